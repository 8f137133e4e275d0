// Type tests of the public API: checked by `npm run typecheck` (tsconfig includes test/),
// so a type users rely on cannot change shape or disappear unnoticed.
import { expectTypeOf } from 'vitest'
import type {
  AgentContext,
  Backend,
  CompiledPlan,
  ErrorCode,
  Executor,
  ExecResult,
  Plan,
  Run,
  RunEvents,
  RunOptions,
  RunResult,
  Runtime,
  RuntimeOptions,
  TaskAddedEvent,
  TaskLogEvent,
  TaskProgressEvent,
  TaskResult,
  TaskSpec,
  TaskState,
  TaskStateEvent,
  TroupeConfig,
  TroupeError,
} from '../../src/index.ts'
import type { createRuntime, loadPlan, runPlan } from '../../src/index.ts'

// Building and running.
expectTypeOf<typeof createRuntime>().parameter(0).toEqualTypeOf<RuntimeOptions | undefined>()
expectTypeOf<typeof createRuntime>().returns.toEqualTypeOf<Runtime>()
expectTypeOf<typeof loadPlan>().returns.toEqualTypeOf<CompiledPlan>()
expectTypeOf<Runtime['run']>().parameters.toEqualTypeOf<[plan: Plan | CompiledPlan, options?: RunOptions]>()
expectTypeOf<Runtime['run']>().returns.toEqualTypeOf<Run>()
expectTypeOf<Run['result']>().toEqualTypeOf<Promise<RunResult>>()
expectTypeOf<typeof runPlan>().returns.resolves.toEqualTypeOf<RunResult>()
expectTypeOf<RuntimeOptions>().toHaveProperty('config')
expectTypeOf<TroupeConfig>().toHaveProperty('maxParallel')
// A backend of your own: the executor, the gates it needs, close.
expectTypeOf<Backend>().toHaveProperty('executor').toEqualTypeOf<Executor>()
expectTypeOf<Backend>().toExtend<RuntimeOptions['backend']>()

// Plans.
expectTypeOf<Plan['tasks']>().toEqualTypeOf<readonly TaskSpec[]>()
expectTypeOf<TaskSpec>().toHaveProperty('id').toEqualTypeOf<string>()
expectTypeOf<TaskSpec>().toHaveProperty('agent').toEqualTypeOf<string>()

// Results.
expectTypeOf<RunResult['tasks']>().toEqualTypeOf<Readonly<Record<string, TaskResult>>>()
expectTypeOf<RunResult['speedup']>().toEqualTypeOf<number>()
expectTypeOf<RunResult['status']>().toEqualTypeOf<'completed' | 'failed' | 'cancelled' | 'paused'>()
expectTypeOf<TaskResult['state']>().toEqualTypeOf<TaskState>()

// Events.
expectTypeOf<RunEvents['task:state']>().toEqualTypeOf<[TaskStateEvent]>()
expectTypeOf<RunEvents['task:progress']>().toEqualTypeOf<[TaskProgressEvent]>()
expectTypeOf<RunEvents['task:log']>().toEqualTypeOf<[TaskLogEvent]>()
expectTypeOf<RunEvents['task:added']>().toEqualTypeOf<[TaskAddedEvent]>()

// Errors.
expectTypeOf<TroupeError['code']>().toEqualTypeOf<ErrorCode>()
expectTypeOf<'ERR_AGENT_LOAD'>().toExtend<ErrorCode>()

// Agents: what a module agent receives.
expectTypeOf<AgentContext>().toHaveProperty('taskId').toEqualTypeOf<string>()
expectTypeOf<AgentContext>().toHaveProperty('log')
expectTypeOf<AgentContext>().toHaveProperty('exec').returns.resolves.toEqualTypeOf<ExecResult>()
