import { Effect } from "effect"
import { PlanError } from "../errors.ts"
import * as Source from "../pipeline/Source.ts"

export interface GeneratorOptions<A> {
  /**
   * Makes the record with sequence number `seq` (0, 1, 2, ...). `due` is the
   * wall-clock time (ms) the record is scheduled for at `itemsPerSecond` (the
   * time it is made, without a rate): an event time that counts a source
   * falling behind its schedule as latency.
   */
  readonly make: (seq: number, due: number) => A
  /** Records per second over all instances; unlimited when omitted. */
  readonly itemsPerSecond?: number | undefined
  /** Stop after this many records (a whole number); unbounded when omitted or `Infinity`. */
  readonly count?: number | undefined
  /** The event time a record carries, for `Stage.withNativeTimestamps`. */
  readonly eventTime?: ((a: A) => number) | undefined
  readonly name?: string | undefined
  /** At most this many instances (default: the job's parallelism). */
  readonly maxParallelism?: number | undefined
}

/**
 * A test source: records made from sequence numbers, interleaved over the
 * instances (instance i makes i, i + n, i + 2n, ...), optionally at a fixed
 * rate and bounded. A rate that is not a positive number, or a count that is
 * not a whole number, is a `PlanError` here rather than a source that never
 * emits.
 */
export const generator = <A>(options: GeneratorOptions<A>): Source.Source<A> => {
  const name = options.name ?? "generator"
  const { count, itemsPerSecond } = options
  if (itemsPerSecond !== undefined && !(itemsPerSecond > 0)) {
    throw new PlanError({ reason: `source "${name}": itemsPerSecond must be a positive number, got ${itemsPerSecond}` })
  }
  if (count !== undefined && count !== Infinity && !(Number.isInteger(count) && count >= 0)) {
    throw new PlanError({ reason: `source "${name}": count must be a whole number, got ${count}` })
  }
  return Source.make({
    name,
    bounded: count !== undefined && count !== Infinity,
    eventTime: options.eventTime,
    maxParallelism: options.maxParallelism,
    open: ({ batchSize, instance, instances, restoredPosition }) =>
      Effect.sync(() => {
        const { make } = options
        const end = count ?? Infinity
        const rate = itemsPerSecond === undefined ? undefined : itemsPerSecond / instances
        // Replayable: the position is the next sequence number.
        let seq = typeof restoredPosition === "number" ? restoredPosition : instance
        let emitted = 0
        const started = Date.now()
        return {
          position: () => seq,
          // Instance i makes i, i + n, ... below `end`.
          progress: end === Infinity ? undefined : () => ({
            done: Math.ceil(Math.max(0, Math.min(seq, end) - instance) / instances),
            total: Math.ceil(Math.max(0, end - instance) / instances)
          }),
          pull: Effect.suspend(() => {
            if (seq >= end) return Effect.succeed(undefined)
            let due = batchSize
            if (rate !== undefined) {
              due = Math.min(batchSize, Math.floor(((Date.now() - started) / 1000) * rate) - emitted)
              if (due <= 0) {
                const waitMs = Math.max(1, Math.ceil(((emitted + 1) / rate) * 1000 - (Date.now() - started)))
                return Effect.as(Effect.sleep(Math.min(waitMs, 100)), [])
              }
            }
            const batch: Array<A> = []
            if (rate === undefined) {
              const now = Date.now()
              for (; batch.length < due && seq < end; seq += instances) batch.push(make(seq, now))
            } else {
              for (; batch.length < due && seq < end; seq += instances) batch.push(make(seq, started + ((emitted + batch.length) * 1000) / rate))
            }
            emitted += batch.length
            return Effect.succeed(batch)
          })
        }
      })
  })
}
