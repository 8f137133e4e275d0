import { TroupeError, describeValue } from '../runtime/core/errors.ts'
import { isRunId } from '../runtime/journal/paths.ts'

/** Refuses a run id argument that is not one safe path segment (`isRunId`): exit 2. */
export function checkRunId(runId: string): void {
  if (!isRunId(runId)) {
    throw new TroupeError(
      'ERR_ARGUMENT_INVALID',
      `Expected a run id of 1-128 letters, digits, '.', '_' or '-' (not "." or ".."), got ${describeValue(runId)}`,
    )
  }
}
