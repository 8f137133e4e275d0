import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { CLI_ENTRY } from '../helpers/cli.ts'

// The live view as a person sees it: `troupe run` in a real terminal (tmux) of 60, 80 and
// 120 columns, the screen captured every 0.25 s. Regressions: the panel was missing from
// half the frames (a persisted line erased it until the next tick), a stale first panel
// stayed on screen (lines written past log-update), and at 60 columns the summary broke
// mid-word, split the resume command and cut error codes.
const hasTmux = spawnSync('tmux', ['-V']).status === 0
const TSX = import.meta.resolve('tsx')

const PLAN = `name: tmux-live
agents:
  chatty:
    kind: command
    run: [sh, -c, "for i in 1 2 3 4 5 6 7 8; do echo step $i of {{input.name}}; sleep 0.25; done"]
  broken:
    kind: command
    run: [sh, -c, "sleep 1; echo 'error TS2304: Cannot find name widgetFactory' >&2; exit 3"]
tasks:
${Array.from({ length: 6 }, (_, i) => `  - { id: build-package-${i}, agent: chatty, input: { name: pkg${i} } }`).join('\n')}
  - { id: typecheck-everything, agent: broken }
  - { id: publish, agent: chatty, input: { name: all }, dependsOn: [typecheck-everything] }
`

/** The counts line that opens the live panel. */
const PANEL = /\d+ running · \d+ queued · \d+ pending · \d+ completed/
const PANELS = new RegExp(PANEL.source, 'g')

async function capture(columns: number): Promise<{ frames: string[]; final: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-tmux-'))
  writeFileSync(join(dir, 'plan.yaml'), PLAN)
  const socket = `troupe-test-${process.pid}-${columns}-${Date.now()}`
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' })
  const command = `cd ${dir} && ${process.execPath} --import ${TSX} ${CLI_ENTRY} run plan.yaml --max-parallel 4; echo "exit=$?"; sleep 600`
  tmux('new-session', '-d', '-s', 'live', '-x', String(columns), '-y', '40', command)
  const frames: string[] = []
  try {
    const deadline = Date.now() + 90_000
    for (;;) {
      // -J joins lines the terminal soft-wrapped: a joined line longer than the width wrapped.
      const frame = tmux('capture-pane', '-p', '-J', '-t', 'live')
      frames.push(frame)
      if (/exit=\d+/.test(frame) || Date.now() > deadline) break
      await sleep(250)
    }
    return { frames, final: tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', 'live') }
  } finally {
    spawnSync('tmux', ['-L', socket, 'kill-server'])
  }
}

describe.skipIf(!hasTmux)('the live view in tmux', () => {
  for (const columns of [60, 80, 120]) {
    it(`shows one panel in every frame of the run and a summary within ${columns} columns`, { timeout: 120_000 }, async () => {
      const { frames, final } = await capture(columns)
      if (process.env.TMUX_FRAMES) writeFileSync(`${process.env.TMUX_FRAMES}-${columns}`, [...frames, final].join('\n=====FRAME=====\n'))
      expect(final).toMatch(/exit=1/)
      // From the first panel to the end of the run (the summary's table header).
      const first = frames.findIndex((f) => PANEL.test(f))
      const end = frames.findIndex((f) => /^task +state +tries/m.test(f))
      expect(first).toBeGreaterThanOrEqual(0)
      expect(end).toBeGreaterThan(first)
      const during = frames.slice(first, end)
      expect(during.length).toBeGreaterThanOrEqual(4)
      for (const frame of during) expect(frame.match(PANELS) ?? []).toHaveLength(1)

      const summary = final.slice(final.search(/^task +state +tries/m)).split('\n')
      for (const line of summary) expect(line.length).toBeLessThanOrEqual(columns)
      const text = summary.join('\n')
      expect(text).toMatch(/\b6\/8 tasks completed\b/)
      expect(text).toContain('ERR_COMMAND_FAILED')
      expect(text).toMatch(/│ error TS2304: Cannot find name widgetFactory/)
      // Whole, or broken between arguments with shell continuations (one command when pasted).
      expect(text.replace(/ \\\n +/g, ' ')).toMatch(/(?:^ *|resume: )troupe run plan\.yaml --run-id tmux-live-\S+$/m)
      expect(text).not.toContain('ERR_COMMAND_F…')
    })
  }
})
