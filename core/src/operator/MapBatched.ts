import { Effect } from "effect"
import { StageError } from "../errors.ts"
import { failAt } from "./failure.ts"
import type { AsyncOperator } from "./Operator.ts"

/**
 * `mapBatchedUsingService`: one call of the user's effect per batch (a lookup
 * asking its database once for the batch's keys). It must answer each record
 * of the batch, in order: a call that does not is a `StageError`, not a
 * silent loss.
 */
export const mapBatched = (
  stage: string,
  service: unknown,
  fn: (service: any, batch: ReadonlyArray<any>) => Effect.Effect<ReadonlyArray<unknown>, unknown, any>
): AsyncOperator<unknown, unknown> => ({
  processAsync: (batch) =>
    Effect.suspend(() => fn(service, batch)).pipe(
      // A typed failure stays the user's (caught by its tag), annotated; a throw (defect) becomes a StageError.
      Effect.catch(failAt(stage, batch[0])),
      Effect.catchDefect((cause) => Effect.fail(new StageError({ stage, record: batch[0], cause }))),
      Effect.flatMap((out) =>
        out.length === batch.length ? Effect.succeed(out) : Effect.fail(
          new StageError({ stage, record: batch[0], cause: new Error(`${out.length} results for a batch of ${batch.length} records`) })
        )
      )
    )
})
