import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { normaliseClaim } from '../../../src/runtime/admission/claim-paths.ts'
import { ClaimRegistry } from '../../../src/runtime/admission/claims.ts'
import { compilePlan } from '../../../src/runtime/plan/load-plan.ts'
import type { CompiledTask } from '../../../src/runtime/plan/plan.ts'

const agent = join(import.meta.dirname, '..', '..', 'fixtures', 'agents', 'noop.mjs')
let root: string

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'troupe-claim-paths-'))
  mkdirSync(join(root, 'src', 'x'), { recursive: true })
  mkdirSync(join(root, 'lib'))
  writeFileSync(join(root, 'src', 'a.ts'), '')
  symlinkSync(join(root, 'src'), join(root, 'alias'))
  symlinkSync(tmpdir(), join(root, 'escape'))
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

const claiming = (claims: string[][]): CompiledTask[] =>
  compilePlan({ name: 'p', tasks: claims.map((c, i) => ({ id: `t${i}`, agent, claims: c })) }, { baseDir: root }).tasks as CompiledTask[]

describe('claims compare paths, not text (regression: four spellings of src/a.ts ran at once)', () => {
  it('normalises ./, .., absolute paths and symlinks to one path relative to the root', () => {
    const spellings = ['src/a.ts', 'src/x/../a.ts', join(root, 'src', 'a.ts'), './src/./a.ts', 'alias/a.ts']
    expect(spellings.map((s) => normaliseClaim(root, s))).toEqual(spellings.map(() => ({ claim: 'src/a.ts' })))
  })

  it('keeps a glob\'s wildcard part and resolves its static part', () => {
    expect(normaliseClaim(root, './alias/**/*.ts')).toEqual({ claim: 'src/**/*.ts' })
  })

  it('refuses a claim outside the root, also through a symlink', () => {
    expect(normaliseClaim(root, '../elsewhere.ts')).toHaveProperty('refused')
    expect(normaliseClaim(root, 'escape/file')).toHaveProperty('refused')
  })

  it('a task whose plan claim is another spelling of a held claim waits', () => {
    const registry = new ClaimRegistry()
    registry.track('r', root)
    const [a, b, c, d] = claiming([['src/a.ts'], ['src/x/../a.ts'], [join(root, 'src/a.ts')], ['./src/./a.ts']])
    expect([registry.tryAcquire('r', a!), registry.tryAcquire('r', b!), registry.tryAcquire('r', c!), registry.tryAcquire('r', d!)]).toEqual([true, false, false, false])
  })

  it("ctx.claim('lib/../lib/b.ts') is refused while another task holds lib/b.ts, naming the holder", () => {
    const registry = new ClaimRegistry()
    registry.track('r', root)
    expect(registry.claim('r', 'holder', 'lib/b.ts')).toEqual({ granted: true })
    expect(registry.claim('r', 'other', 'lib/../lib/b.ts')).toMatchObject({ granted: false, holder: 'holder' })
  })

  it('ctx.claim of a path outside the root is refused with the reason', () => {
    const registry = new ClaimRegistry()
    registry.track('r', root)
    expect(registry.claim('r', 't', '../../etc/passwd')).toMatchObject({ granted: false, reason: expect.stringContaining("outside the run's root") })
  })

  it('ctx.release of another spelling releases the claim', () => {
    const registry = new ClaimRegistry()
    registry.track('r', root)
    registry.claim('r', 'holder', 'lib/b.ts')
    expect(registry.unclaim('r', 'holder', './lib/./b.ts')).toBe(true)
    expect(registry.claim('r', 'other', 'lib/b.ts')).toEqual({ granted: true })
  })

  it('a plan claiming a path outside its root is ERR_PLAN_INVALID naming task and claim', () => {
    const registry = new ClaimRegistry()
    const plan = compilePlan({ name: 'p', tasks: [{ id: 'bad', agent, claims: ['../outside.txt'] }] }, { baseDir: root })
    expect(() => registry.check(root, plan)).toThrow(expect.objectContaining({ code: 'ERR_PLAN_INVALID', message: expect.stringMatching(/Task "bad" claims .*"\.\.\/outside\.txt"/) }))
  })
})
