import { Schema } from "effect"
import { StageError } from "../errors.ts"
import { event, type Event } from "../pipeline/Event.ts"
import type { DeadLetter } from "../pipeline/DeadLetter.ts"
import type { Origin } from "../pipeline/Source.ts"
import type { Operator } from "./Operator.ts"

/** A record a stage rejected, with its index in the batch the stage was given. */
export interface Rejected {
  readonly stage: string
  readonly record: unknown
  readonly cause: unknown
  readonly index: number
}

/**
 * A map whose function may reject a record by throwing (`Stage.decode`,
 * `Stage.map` with dead letters): the record is put aside and the rest of the
 * batch goes on. One `try` per batch and per rejection, not per record.
 */
export class Rejecting implements Operator<unknown, unknown> {
  readonly rejected: Array<Rejected> = []
  private readonly stage: string
  private readonly fn: (a: unknown) => unknown
  private readonly timed: boolean
  /** Rejected records go to the vertex's dead-letter sink; without one the first fails the job. */
  readonly deadLetters: boolean

  constructor(stage: string, fn: (a: unknown) => unknown, timed: boolean, deadLetters: boolean) {
    this.stage = stage
    this.fn = fn
    this.timed = timed
    this.deadLetters = deadLetters
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>, out: Array<unknown>): void {
    const { fn, timed } = this
    let i = 0
    while (i < batch.length) {
      try {
        if (timed) {
          for (; i < batch.length; i++) {
            const e = batch[i] as Event<unknown>
            out.push(event(e.t, fn(e.v)))
          }
        } else {
          for (; i < batch.length; i++) out.push(fn(batch[i]))
        }
      } catch (cause) {
        const record = timed ? (batch[i] as Event<unknown>).v : batch[i]
        this.rejected.push({ stage: this.stage, record, cause, index: i })
        i++
      }
    }
  }
}

/** Decodes with `schema` synchronously, throwing its `SchemaError` for a record that does not decode. */
export const decoder = (schema: Schema.ConstraintDecoder<unknown>) => {
  const decode = Schema.decodeUnknownResult(schema)
  return (a: unknown): unknown => {
    const result = decode(a)
    if (result._tag === "Failure") throw result.failure
    return result.success
  }
}

const message = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** The dead letter of `r`, with where it came from when the stage read the source's batch. */
export const deadLetter = (r: Rejected, origin: Origin | undefined): DeadLetter => ({
  stage: r.stage,
  record: r.record,
  error: { message: message(r.cause), issue: Schema.isSchemaError(r.cause) ? r.cause.issue : undefined },
  ...(origin && { split: origin.split, position: origin.position, index: r.index })
})

/** The failure of a job whose stage rejected `r` without a dead-letter sink. */
export const rejectedError = (r: Rejected, origin: Origin | undefined): StageError =>
  new StageError({ stage: r.stage, record: r.record, cause: r.cause, ...(origin && { split: origin.split, position: origin.position, index: r.index }) })
