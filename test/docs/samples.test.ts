import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { resolveConfig, type TroupeConfig } from '../../src/runtime/core/config.ts'
import { isTroupeError } from '../../src/runtime/core/errors.ts'
import { compilePlan } from '../../src/runtime/plan/load-plan.ts'
import { createRuntime, type Runtime } from '../../src/runtime/runtime.ts'
import { CLI_ENTRY } from '../helpers/cli.ts'
import { ROOT, codeBlocks, docFiles, where, type CodeBlock } from './markdown.ts'

/**
 * Every code sample in README.md and docs/ runs here. A fence's info string says how:
 *
 * - ```yaml plan            the plan runs to completion (command and module agents)
 * - ```yaml plan validate   the plan compiles (CLI agents find stand-in executables; API-key variables are set)
 * - ```yaml plan invalid ERR_CODE   compiling the plan fails with that code
 * - ```json config          the config resolves; the document's plans after it run with it
 * - ```ts run               a script run with tsx; `from 'troupe'` is this repository's source
 * - ```sh run               shell lines run with `sh -e`, `troupe` being this repository's CLI
 * - file=PATH (any of the above, or alone)   the block is also written to PATH first
 *
 * Each document gets one sandbox directory (a git repository with one commit) shared by its
 * blocks in order, so a `file=` block (an agent module, a plan) serves the blocks after it.
 * A block marked `<!-- not-run -->` on the line before is illustrative; every other block in
 * a code language must say how it runs.
 */

const CODE_LANGUAGES = new Set(['yaml', 'yml', 'json', 'jsonc', 'ts', 'typescript', 'js', 'mjs', 'javascript', 'sh', 'bash', 'shell'])
const STAND_INS = join(ROOT, 'test', 'fixtures', 'bin')
const TSX = import.meta.resolve('tsx')
const run = promisify(execFile)
/** Plans with LLM agents validate: the variables are set, to values no provider accepts. */
const API_KEYS = { OPENAI_API_KEY: 'sk-docs-sample', ANTHROPIC_API_KEY: 'sk-docs-sample' }

function sandboxConfig(sandbox: string): TroupeConfig {
  return { checkpoint: { dir: join(sandbox, '.troupe') }, pool: { minThreads: 1, maxThreads: 4 } }
}

function modeOf(block: CodeBlock): { mode: string; args: string[]; file: string | undefined } {
  const file = block.words.find((w) => w.startsWith('file='))?.slice('file='.length)
  const rest = block.words.filter((w) => !w.startsWith('file='))
  return { mode: rest.join(' ').replace(/\s+ERR_[A-Z_]+$/, ''), args: rest.filter((w) => /^ERR_/.test(w)), file }
}

const documents = docFiles()
  .map((file) => ({ file, blocks: codeBlocks(file) }))
  .filter((doc) => doc.blocks.some((b) => CODE_LANGUAGES.has(b.lang) && !b.notRun && b.words.length > 0))

it('every code sample in README.md and docs/ says how it runs, or is marked <!-- not-run -->', () => {
  const unmarked = docFiles().flatMap((file) =>
    codeBlocks(file)
      .filter((b) => CODE_LANGUAGES.has(b.lang) && !b.notRun && b.words.length === 0)
      .map((b) => `${where(b.file, b.line)} (${b.lang})`),
  )
  expect(unmarked).toEqual([])
})

/** One document's sandbox: a git repository, a `troupe` (and CLI placeholders) on PATH, and a runtime for its plans. */
class Sandbox {
  readonly dir = mkdtempSync(join(tmpdir(), 'troupe-docs-'))
  readonly env: NodeJS.ProcessEnv
  runtime: Runtime

  constructor() {
    const identity = ['-c', 'user.email=docs@example.com', '-c', 'user.name=docs']
    const git = (...args: string[]) => execFileSync('git', [...identity, ...args], { cwd: this.dir })
    git('init', '-q', '-b', 'main')
    writeFileSync(join(this.dir, '.gitignore'), '.troupe/\nnode_modules/\n')
    git('add', '-A')
    git('commit', '-qm', 'sandbox')
    const bin = join(this.dir, '.bin')
    mkdirSync(bin)
    writeFileSync(join(bin, 'troupe'), `#!/bin/sh\nexec "${process.execPath}" --import "${TSX}" "${CLI_ENTRY}" "$@"\n`)
    chmodSync(join(bin, 'troupe'), 0o755)
    // `plan validate` blocks look CLI executables up on PATH and never start them: Codex and
    // Gemini have no stand-in (their tests drive the real CLIs), so placeholders that fail if run.
    for (const cli of ['codex', 'gemini']) {
      writeFileSync(join(bin, cli), '#!/bin/sh\necho "docs sandbox: $0 is a placeholder" >&2\nexit 1\n')
      chmodSync(join(bin, cli), 0o755)
    }
    this.env = { ...process.env, ...API_KEYS, NO_COLOR: '1', PATH: [bin, STAND_INS, process.env.PATH].join(delimiter) }
    this.runtime = createRuntime({ config: sandboxConfig(this.dir) })
  }

  /** Compiles a plan as on a machine with the stand-in CLIs and the API-key variables (executables are looked up now). */
  compile(data: unknown) {
    const saved = { PATH: process.env.PATH, OPENAI_API_KEY: process.env.OPENAI_API_KEY, ANTHROPIC_API_KEY: process.env.ANTHROPIC_API_KEY }
    Object.assign(process.env, { PATH: this.env.PATH }, API_KEYS)
    try {
      return compilePlan(data, { baseDir: this.dir })
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key]
        else process.env[key] = value
      }
    }
  }

  async run(block: CodeBlock): Promise<void> {
    const { mode, args, file: target } = modeOf(block)
    if (target !== undefined) {
      mkdirSync(dirname(join(this.dir, target)), { recursive: true })
      writeFileSync(join(this.dir, target), block.code)
    }
    switch (mode) {
      case '':
        expect(target, 'a block with no mode must name a file=').toBeDefined()
        return
      case 'plan invalid': {
        let error: unknown
        try {
          this.compile(parsePlan(block))
        } catch (caught) {
          error = caught
        }
        expect(isTroupeError(error) ? error.code : error).toBe(args[0])
        return
      }
      case 'plan validate':
        this.compile(parsePlan(block))
        return
      case 'plan': {
        const result = await this.runtime.run(this.compile(parsePlan(block))).result
        const failed = Object.entries(result.tasks).filter(([, t]) => t.state !== 'COMPLETED' && t.error?.code !== 'ERR_CONDITION_FALSE')
        expect([result.status, failed.map(([id, t]) => `${id}: ${t.error?.code} ${t.error?.message}`)]).toEqual(['completed', []])
        return
      }
      case 'config': {
        const config = JSON.parse(block.code) as TroupeConfig
        expect(() => resolveConfig(config)).not.toThrow()
        // The plans after it in the document run with it.
        await this.runtime.close({ force: true })
        const checkpoint = { ...config.checkpoint, dir: join(this.dir, '.troupe') }
        this.runtime = createRuntime({ config: { ...sandboxConfig(this.dir), ...config, checkpoint } })
        return
      }
      case 'run': {
        if (block.lang === 'sh') {
          await run('/bin/sh', ['-e', '-c', block.code], { cwd: this.dir, env: this.env, timeout: 150_000 })
          return
        }
        const script = join(this.dir, `sample-${block.line}.mts`)
        const source = block.code
          .replace(/from 'troupe'/g, `from ${JSON.stringify(join(ROOT, 'src', 'index.ts'))}`)
          .replace(/from 'troupe\/dashboard'/g, `from ${JSON.stringify(join(ROOT, 'src', 'dashboard.ts'))}`)
        writeFileSync(script, source)
        await run(process.execPath, ['--import', TSX, script], { cwd: this.dir, env: this.env, timeout: 150_000 })
        return
      }
      default:
        throw new Error(`unknown sample mode "${mode}"`)
    }
  }
}

function parsePlan(block: CodeBlock): unknown {
  return block.lang === 'json' ? JSON.parse(block.code) : parse(block.code)
}

// Documents run side by side (most of the time is spent waiting for processes); the blocks of
// one document run in order, since a `file=` block serves the blocks after it.
describe.concurrent('samples', () => {
  it.each(documents)('of $file run', { timeout: 240_000 }, async ({ blocks }) => {
    const sandbox = new Sandbox()
    try {
      for (const block of blocks.filter((b) => CODE_LANGUAGES.has(b.lang) && !b.notRun && b.words.length > 0)) {
        try {
          await sandbox.run(block)
        } catch (error) {
          const detail = error as { message?: string; stderr?: string; stdout?: string }
          const output = [detail.stdout, detail.stderr].filter(Boolean).join('\n')
          const sample = `${where(block.file, block.line)} (${block.lang} ${block.words.join(' ')})`
          throw new Error(`${sample}: ${detail.message}${output ? `\n${output}` : ''}`, { cause: error })
        }
      }
    } finally {
      await sandbox.runtime.close({ force: true })
    }
  })
})
