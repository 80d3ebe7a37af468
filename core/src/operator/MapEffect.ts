import { Effect } from "effect"
import { StageError } from "../errors.ts"
import { failAt } from "./failure.ts"
import type { AsyncOperator } from "./Operator.ts"

/**
 * `mapEffect`: runs the user's effect for each record of a batch with at most
 * `concurrency` in flight. Ordered keeps input order; unordered emits in
 * completion order, so one slow record does not hold back the others' output.
 */
export const mapEffect = (
  stage: string,
  fn: (a: any) => Effect.Effect<unknown, unknown, any>,
  concurrency: number,
  ordered: boolean
): AsyncOperator<unknown, unknown> => {
  // A typed failure stays the user's (caught by its tag), annotated; a throw (defect) becomes a StageError.
  const run = (a: unknown) =>
    Effect.suspend(() => fn(a)).pipe(
      Effect.catch(failAt(stage, a)),
      Effect.catchDefect((cause) => Effect.fail(new StageError({ stage, record: a, cause })))
    )
  return {
    processAsync: ordered
      ? (batch) => Effect.forEach(batch, run, { concurrency })
      : (batch) =>
        Effect.suspend(() => {
          const out: Array<unknown> = []
          return Effect.as(
            Effect.forEach(batch, (a) => Effect.map(run(a), (b) => out.push(b)), { concurrency, discard: true }),
            out
          )
        })
  }
}
