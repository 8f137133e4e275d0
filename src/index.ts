/**
 * troupe: run many agents in parallel, as XState actors on piscina worker threads.
 * Every public name is listed here; everything else is internal.
 */
export { createRuntime, runPlan, Runtime } from './runtime/runtime.ts'
export type { RuntimeOptions, RunOptions, RuntimeStatus, CloseOptions, RuntimeEvents } from './runtime/runtime.ts'
export { Run } from './runtime/run.ts'
export type { Clock } from './runtime/run.ts'
export { compilePlan, loadPlan, PRIORITIES, STRATEGIES } from './runtime/plan.ts'
export type { Plan, TaskSpec, CompiledPlan, CompiledTask, Priority, Strategy } from './runtime/plan.ts'
export { resolveConfig, loadConfig, ConfigSchema, CONFIG_FILE } from './runtime/config.ts'
export type { TroupeConfig, ResolvedConfig, LimitConfig } from './runtime/config.ts'
export { TroupeError, isTroupeError, ERROR_CODES } from './runtime/errors.ts'
export type { ErrorCode, SerializedError } from './runtime/errors.ts'
export { classifyParallelization } from './runtime/result.ts'
export type { RunResult, TaskResult, RunTotals, RunStatus, Parallelization } from './runtime/result.ts'
export type { RunEvents, TaskStateEvent, TaskProgressEvent, TaskLogEvent, RunStartEvent, RunEndEvent } from './runtime/events.ts'
export { TASK_STATES } from './actors/task-machine.ts'
export type { TaskState } from './actors/task-machine.ts'
export type { AgentContext } from './runtime/worker.ts'
