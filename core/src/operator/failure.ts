import { Cause, Context, Effect } from "effect"
import { FailedStage, StageError } from "../errors.ts"

/**
 * Runs `body` over `batch[from..]`, turning a throw into a `StageError` naming
 * the stage and the record at the index `body` reached. One `try` per batch,
 * not per record.
 */
export const eachRecord = <A>(
  stage: string,
  batch: ReadonlyArray<A>,
  body: (record: A) => void
): void => {
  let i = 0
  try {
    for (; i < batch.length; i++) body(batch[i]!)
  } catch (cause) {
    throw cause instanceof StageError ? cause : new StageError({ stage, record: batch[i], cause })
  }
}

/** Runs `body`, naming `stage` and `record` if it throws. */
export const guarded = <T>(stage: string, record: unknown, body: () => T): T => {
  try {
    return body()
  } catch (cause) {
    throw cause instanceof StageError ? cause : new StageError({ stage, record, cause })
  }
}

/** Fails with a stage's own error, annotated with the stage and the record (`undefined` for none). */
export const failAt = (stage: string, record: unknown) => <E>(error: E): Effect.Effect<never, E> =>
  Effect.failCause(Cause.annotate(Cause.fail(error), Context.make(FailedStage, { stage, record })))
