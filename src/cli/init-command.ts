import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { basename, join, relative, resolve, sep } from 'node:path'
import picomatch from 'picomatch'
import { Document, isMap, isScalar, isSeq, visit } from 'yaml'
import { CONFIG_FILE } from '../runtime/core/config.ts'
import { TroupeError } from '../runtime/core/errors.ts'
import { INIT_PLAN_FILE, type InitTemplate } from './choices.ts'
import { EXIT } from './exit-codes.ts'

export interface InitCommandOptions {
  /** Overwrite existing files. */
  readonly force?: boolean
  /** Where to write. @default process.cwd() */
  readonly dir?: string
}


/** The npm scripts the `checks` template runs, per package, in this order. */
export const CHECK_SCRIPTS = ['lint', 'typecheck', 'test'] as const

/** What `npm init` writes as the test script: a placeholder, not a check. */
const NPM_PLACEHOLDER_TEST = /no test specified/

/** The schemas shipped with troupe (two levels up from src/cli and from dist/cli). */
const SCHEMA_DIR = join(import.meta.dirname, '..', '..', 'schema')

interface Files {
  readonly plan: string
  readonly config: Record<string, unknown>
  /** One line for the user: what the plan does and how to run it. */
  readonly next: string
}

/**
 * `troupe init [template]`: writes `plan.yaml` and `troupe.config.json` for a common job.
 * Refuses to overwrite either (ERR_ARGUMENT_INVALID, exit 2) unless `force`.
 */
export function initCommand(template: InitTemplate, options: InitCommandOptions = {}): number {
  const dir = resolve(options.dir ?? '.')
  const targets = [join(dir, INIT_PLAN_FILE), join(dir, CONFIG_FILE)]
  const existing = targets.filter((file) => existsSync(file))
  if (existing.length > 0 && !options.force) {
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `troupe init would overwrite ${existing.map((file) => relative(process.cwd(), file) || file).join(' and ')}; ` +
        `move ${existing.length === 1 ? 'it' : 'them'} away, or pass --force to overwrite`,
    )
  }
  const files = TEMPLATES[template](dir)
  const schema = (name: string) => relative(dir, join(SCHEMA_DIR, `${name}.schema.json`)).split(sep).join('/')
  writeFileSync(targets[0]!, `# yaml-language-server: $schema=${schema('plan')}\n${files.plan}`)
  writeFileSync(targets[1]!, `${JSON.stringify({ $schema: schema('config'), ...files.config }, null, 2)}\n`)
  process.stderr.write(`troupe: wrote ${INIT_PLAN_FILE} and ${CONFIG_FILE} (template ${template}). ${files.next}\n`)
  return EXIT.ok
}

const TEMPLATES: Record<InitTemplate, (dir: string) => Files> = {
  checks: checksTemplate,
  'review-fanout': reviewTemplate,
  'feature-team': featureTeamTemplate,
}

/** One package of an npm workspace (or the root package when there is no workspace). */
interface Package {
  /** Directory relative to the root, '' for the root package. */
  readonly dir: string
  readonly scripts: ReadonlySet<string>
}

function checksTemplate(dir: string): Files {
  const packages = findPackages(dir)
  const tasks: Record<string, unknown>[] = []
  const usedIds = new Set<string>()
  for (const pkg of packages) {
    const name = pkg.dir === '' ? 'root' : basename(pkg.dir)
    for (const script of CHECK_SCRIPTS) {
      if (!pkg.scripts.has(script)) continue
      let id = `${script}-${name}`
      for (let n = 2; usedIds.has(id); n++) id = `${script}-${name}-${n}`
      usedIds.add(id)
      tasks.push(pkg.dir === '' ? { id, agent: `${script}-root` } : { id, agent: script, input: { workspace: pkg.dir } })
    }
  }
  if (tasks.length === 0) {
    const where = packages.length === 1 && packages[0]!.dir === '' ? 'package.json' : `the ${packages.length} packages of the workspace`
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `troupe init checks found no ${CHECK_SCRIPTS.join(', ')} script in ${where} in ${dir}; add one, or write the plan by hand`,
    )
  }
  const agents: Record<string, unknown> = {}
  for (const task of tasks) {
    const script = (task.agent as string).replace(/-root$/, '')
    const run = task.input === undefined ? ['npm', 'run', script] : ['npm', 'run', script, '--workspace', '{{input.workspace}}']
    agents[task.agent as string] = { kind: 'command', run }
  }
  const plan = {
    name: 'checks',
    agents,
    tasks,
  }
  return {
    plan:
      `# ${CHECK_SCRIPTS.join(', ')} of every package, in parallel: one task per package and script.\n` +
      '# Found by troupe init checks in package.json; run it again with --force after adding packages.\n' +
      toYaml(plan, { flowTasks: true }),
    config: { timeoutMs: 600000 },
    next: `${tasks.length} tasks; run: troupe run`,
  }
}

/** The packages of the npm workspace in `dir` (package.json `workspaces`), else the root package alone. */
export function findPackages(dir: string): Package[] {
  const manifest = readManifest(join(dir, 'package.json'))
  if (manifest === undefined) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `troupe init checks needs a package.json in ${dir} (an npm package or workspace)`)
  }
  // `workspaces` is an array of globs, or (yarn's form) an object with `packages`.
  const declared = manifest.workspaces as unknown[] | { packages?: unknown } | undefined
  const workspaces = Array.isArray(declared) ? declared : declared?.packages
  const root: Package = { dir: '', scripts: scriptsOf(manifest) }
  if (!Array.isArray(workspaces) || workspaces.length === 0) return [root]
  const globs = workspaces.filter((w): w is string => typeof w === 'string').map((w) => w.replace(/^\.\//, '').replace(/\/$/, ''))
  const isMatch = picomatch(globs)
  const found: Package[] = []
  const walk = (relativeDir: string, depth: number) => {
    for (const entry of readdirSync(join(dir, relativeDir), { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === 'node_modules' || entry.name.startsWith('.')) continue
      const child = relativeDir === '' ? entry.name : `${relativeDir}/${entry.name}`
      const childManifest = isMatch(child) ? readManifest(join(dir, child, 'package.json')) : undefined
      if (childManifest !== undefined) found.push({ dir: child, scripts: scriptsOf(childManifest) })
      if (depth < 3) walk(child, depth + 1)
    }
  }
  walk('', 1)
  found.sort((a, b) => a.dir.localeCompare(b.dir))
  // The root's own checks (e.g. a repository-wide lint) run too.
  return root.scripts.size > 0 ? [root, ...found] : found
}

function readManifest(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch (error) {
    throw new TroupeError('ERR_ARGUMENT_INVALID', `Cannot read ${file}: ${(error as Error).message}`, { cause: error })
  }
}

function scriptsOf(manifest: Record<string, unknown>): Set<string> {
  const scripts = (manifest.scripts ?? {}) as Record<string, unknown>
  const isCheck = (name: string) => {
    const script = scripts[name]
    return typeof script === 'string' && !(name === 'test' && NPM_PLACEHOLDER_TEST.test(script))
  }
  return new Set(CHECK_SCRIPTS.filter(isCheck))
}

function reviewTemplate(dir: string): Files {
  let changed: string[]
  try {
    changed = execFileSync('git', ['diff', '--name-only', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .split('\n')
      .filter((line) => line.length > 0)
  } catch (error) {
    const why = (error as { stderr?: string }).stderr?.trim() || (error as Error).message
    const message = `troupe init review-fanout reads \`git diff --name-only HEAD\` in ${dir}, which failed: ${why}`
    throw new TroupeError('ERR_ARGUMENT_INVALID', message, { cause: error })
  }
  if (changed.length === 0) {
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `troupe init review-fanout found no changed files (\`git diff --name-only HEAD\` in ${dir} is empty): ` +
        'it writes one review task per changed file',
    )
  }
  const reviews = changed.map((file, i) => ({
    id: `review-${i + 1}`,
    agent: 'reviewer',
    description: file,
    uses: ['llm'],
    input: {
      file,
      prompt:
        `Review the uncommitted change to ${file} (run: git diff HEAD -- '${file.replace(/'/g, `'\\''`)}'). ` +
        'List bugs, risks and missing tests, most important first, with line numbers. Do not edit files.',
    },
  }))
  const merge = 'Merge these code reviews into one: the five most important findings first, then the rest by file.'
  const findings = reviews.map((review) => `## ${review.input.file}\n{{deps.${review.id}.output.text}}`).join('\n\n')
  const plan = {
    name: 'review-fanout',
    agents: { reviewer: { kind: 'claude-code' }, summary: { kind: 'claude-code' } },
    tasks: [
      ...reviews,
      {
        id: 'summary',
        agent: 'summary',
        dependsOn: reviews.map((review) => review.id),
        uses: ['llm'],
        input: { prompt: `${merge}\n\n${findings}` },
      },
    ],
  }
  return {
    plan:
      '# One Claude Code reviewer per file changed since HEAD (git diff --name-only HEAD), in parallel,\n' +
      '# then one summary. Written by troupe init review-fanout; run it again with --force after new changes.\n' +
      `# Another CLI: set kind to codex or gemini.\n${toYaml(plan)}`,
    config: { limits: { llm: { maxConcurrent: 4 } }, timeoutMs: 900000, budget: { maxCostUsd: 5 } },
    next: `${changed.length} reviews and a summary, with the claude CLI; run: troupe run`,
  }
}

/** The feature team: who depends on whom, and what each is asked. */
const TEAM: readonly { readonly id: string; readonly dependsOn: readonly string[]; readonly prompt: string }[] = [
  {
    id: 'architect',
    dependsOn: [],
    prompt: 'You are the architect. {{input.feature}}. Write docs/design.md: the API contract, data model and which files change. ' +
      'Reply with a short summary.',
  },
  {
    id: 'backend',
    dependsOn: ['architect'],
    prompt: 'You are the backend engineer. {{input.feature}}. Design: {{deps.architect.output.text}}. ' +
      'Implement the server side with tests.',
  },
  {
    id: 'frontend',
    dependsOn: ['architect'],
    prompt: 'You are the frontend engineer. {{input.feature}}. Design: {{deps.architect.output.text}}. ' +
      'Implement the user interface against the API contract.',
  },
  {
    id: 'ux',
    dependsOn: ['architect'],
    prompt: 'You are the UX designer. {{input.feature}}. Design: {{deps.architect.output.text}}. ' +
      'Write docs/ux.md: flows, empty states, accessibility checks.',
  },
  {
    id: 'qa',
    dependsOn: ['backend', 'frontend', 'ux'],
    prompt: 'You are QA. Backend: {{deps.backend.output.text}} Frontend: {{deps.frontend.output.text}}. ' +
      'Run the tests, add the missing ones, report what fails.',
  },
  {
    id: 'security',
    dependsOn: ['backend', 'frontend'],
    prompt: 'You are the security reviewer. Review the change (backend: {{deps.backend.output.text}}) ' +
      'for injection, authorisation and secrets issues; fix what you find.',
  },
]

function featureTeamTemplate(): Files {
  const feature = 'FEATURE: describe the feature here, e.g. "users can export their data as CSV"'
  const plan = {
    name: 'feature-team',
    workspace: 'worktree',
    agents: Object.fromEntries(TEAM.map((role) => [role.id, { kind: 'claude-code' }])),
    tasks: TEAM.map((role) => ({
      id: role.id,
      agent: role.id,
      ...(role.dependsOn.length > 0 ? { dependsOn: role.dependsOn } : {}),
      uses: ['llm'],
      input: { feature, prompt: role.prompt },
    })),
  }
  return {
    plan:
      '# A feature team of Claude Code agents: architect → backend / frontend / ux → qa / security, each in its own\n' +
      '# git worktree; completed work merges into troupe/<runId>/integration in dependency order (your branch is untouched).\n' +
      `# Edit the feature text below, then: troupe run ${INIT_PLAN_FILE}\n${toYaml(plan)}`,
    config: { limits: { llm: { maxConcurrent: 3 } }, timeoutMs: 1800000, cancelGraceMs: 5000, budget: { maxCostUsd: 20 } },
    next: `Edit the feature text in ${INIT_PLAN_FILE} (needs a git repository and the claude CLI), then: troupe run`,
  }
}

/** YAML as a person would write it: short lists inline (`run: [npm, test]`), and with `flowTasks` one task per line. */
function toYaml(plan: Record<string, unknown>, options: { flowTasks?: boolean } = {}): string {
  const doc = new Document(plan)
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((item) => isScalar(item))) node.flow = true
    },
  })
  const tasks = doc.get('tasks')
  if (options.flowTasks && isSeq(tasks)) for (const task of tasks.items) if (isMap(task)) task.flow = true
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false })
}
