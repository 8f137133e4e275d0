import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { isAbsolute, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { AgentSpec } from '../../plan/agent-spec.ts'
import type { AttemptRequest } from '../executor.ts'
import { canonicalJson } from './job-signature.ts'
import type { AttemptJob } from './protocol.ts'

/**
 * What a worker runs is decided by the worker, not by the job: a job names an agent, and the
 * worker runs its own definition of that name, only if it is the definition the job was made
 * from. With a plan (`troupe worker --plan`), every agent the plan defines (by name, module
 * paths given inline included) and nothing else; without one, module agents whose file is in
 * the worker's checkout with the coordinator's content hash. A command, a CLI or a module path
 * that arrives only in the job is never run.
 */

/** The request to run (with the worker's own agent), or why this worker cannot run it. */
export type Admission = { readonly ok: true; readonly request: AttemptRequest } | { readonly ok: false; readonly message: string }

/** Looks up the job's agent among the worker's own. `agents`: the worker's plan's agents by name, if it has a plan. */
export function admitAgent(job: AttemptJob, cwd: string, agents: ReadonlyMap<string, AgentSpec> | undefined): Admission {
  const request = job.request
  const wanted = request.agent
  const agent = `Agent "${wanted.name}"`
  const refuse = (message: string): Admission => ({ ok: false, message })
  if (agents === undefined) {
    if (wanted.kind === 'module') return admitCheckoutModule(job, cwd)
    return refuse(`${agent} (kind ${wanted.kind}) is not defined on this worker: it has no plan (\`troupe worker --plan PLAN\`)`)
  }
  const local = agents.get(wanted.name)
  if (local === undefined) return refuse(`${agent} is not defined in this worker's plan`)
  if (local.kind !== wanted.kind) return refuse(`${agent} is a ${local.kind} agent in this worker's plan, not ${wanted.kind}`)
  if (local.kind === 'module') {
    const file = fileURLToPath(local.moduleUrl)
    if (job.module === undefined || !existsSync(file) || sha256(file) !== job.module.sha256) {
      return refuse(`${agent} module ${file} differs from the coordinator's (content hash); update this worker's checkout`)
    }
    return { ok: true, request: { ...request, agent: local } }
  }
  if (definitionOf(local) !== definitionOf(wanted)) return refuse(`${agent} is defined differently in this worker's plan; update it`)
  return { ok: true, request: { ...request, agent: local } }
}

/** A module agent without a plan: the file in this checkout (never outside it) with the coordinator's content. */
function admitCheckoutModule(job: AttemptJob, cwd: string): Admission {
  const request = job.request
  const wanted = request.agent
  if (wanted.kind !== 'module') throw new TypeError('not a module agent')
  if (job.module === undefined) return { ok: false, message: `Agent "${wanted.name}" comes without the coordinator's content hash` }
  const inside = (file: string) => {
    const path = relative(cwd, file)
    return path !== '' && !path.startsWith('..') && !isAbsolute(path)
  }
  const candidates = [fileURLToPath(wanted.moduleUrl), resolve(cwd, job.module.relativePath)].filter(inside)
  let seen: string | undefined
  for (const file of candidates) {
    if (!existsSync(file)) continue
    seen = file
    if (sha256(file) !== job.module.sha256) continue
    return { ok: true, request: { ...request, agent: { ...wanted, moduleUrl: pathToFileURL(file).href } } }
  }
  return {
    ok: false,
    message:
      seen === undefined
        ? `Agent "${wanted.name}" module ${job.module.relativePath} is not in this worker's checkout (${cwd}); ` +
          'run the worker in a checkout of the same project'
        : `Agent "${wanted.name}" module ${seen} differs from the coordinator's (content hash); update this worker's checkout`,
  }
}

/** What makes two definitions of a process or LLM agent the same: everything but where the machine keeps the program. */
function definitionOf(spec: AgentSpec): string {
  const { executable: _executable, ...rest } = spec as AgentSpec & { executable?: unknown }
  // JSON's canonical text, not the codec's: the job's copy crossed Redis as JSON (undefined members dropped).
  return canonicalJson(rest)
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}
