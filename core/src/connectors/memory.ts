import { Effect } from "effect"
import * as Transactional from "../connector/Transactional.ts"
import * as Sink from "../pipeline/Sink.ts"
import * as Source from "../pipeline/Source.ts"

/**
 * The records of an in-memory collection. An array is split into contiguous
 * slices over the source's instances; any other iterable is read by one
 * instance.
 */
export const fromIterable = <A>(items: Iterable<A>, options?: { readonly name?: string }): Source.Source<A> =>
  Source.make({
    name: options?.name ?? "items",
    bounded: true,
    maxParallelism: Array.isArray(items) ? undefined : 1,
    open: ({ batchSize, instance, instances, restoredPosition }) =>
      Effect.sync(() => {
        if (Array.isArray(items)) {
          const all = items as ReadonlyArray<A>
          const per = Math.ceil(all.length / instances)
          // Replayable: the position is the index of the next item.
          let at = typeof restoredPosition === "number" ? restoredPosition : instance * per
          const start = Math.min(all.length, instance * per)
          const end = Math.min(all.length, instance * per + per)
          return {
            position: () => at,
            progress: () => ({ done: at - start, total: end - start }),
            pull: Effect.sync(() => {
              if (at >= end) return undefined
              const batch = all.slice(at, Math.min(end, at + batchSize))
              at += batch.length
              return batch
            })
          }
        }
        const iterator = items[Symbol.iterator]()
        let exhausted = false
        return {
          pull: Effect.sync(() => {
            if (exhausted) return undefined
            const batch: Array<A> = []
            while (batch.length < batchSize) {
              const next = iterator.next()
              if (next.done) {
                exhausted = true
                break
              }
              batch.push(next.value)
            }
            return batch.length > 0 ? batch : undefined
          })
        }
      })
  })

/** A sink collecting every record in memory. */
export interface CollectSink<A> extends Sink.Sink<A> {
  /** Records written (committed, for a transactional sink) so far; every job writing here appends. */
  readonly items: ReadonlyArray<A>
}

export interface CollectOptions {
  readonly name?: string | undefined
  /**
   * Two-phase commit: records become visible in `items` only when the snapshot
   * after them completes (or the job ends), so with `exactly-once` every record
   * is there exactly once, also across restarts.
   */
  readonly transactional?: boolean | undefined
}

/** Collects every record into an array (tests, small results). */
export const collect = <A>(options?: CollectOptions): CollectSink<A> => {
  const items: Array<A> = []
  const name = options?.name ?? "collect"
  const append = (records: ReadonlyArray<A>) => {
    for (let i = 0; i < records.length; i++) items.push(records[i]!)
  }
  // Transactions prepared and not yet committed, by the string form of their ids.
  const prepared = new Map<string, { readonly id: Transactional.TransactionId; readonly records: Array<A> }>()
  const sink: Sink.Sink<A> = options?.transactional
    ? Transactional.make<A, Array<A>>({
      name,
      inProcess: true,
      open: ({ job }) =>
        Effect.succeed({
          begin: Effect.sync(() => []),
          write: (tx, batch) => Effect.sync(() => void tx.push(...batch)),
          prepare: (records, id) => Effect.sync(() => void prepared.set(Transactional.format(id), { id, records })),
          commit: (id) =>
            Effect.sync(() => {
              const tx = prepared.get(Transactional.format(id))
              prepared.delete(Transactional.format(id))
              if (tx) append(tx.records)
            }),
          abort: (id) => Effect.sync(() => void prepared.delete(Transactional.format(id))),
          recover: Effect.sync(() => [...prepared.values()].flatMap((tx) => (tx.id.job === (job ?? "") ? [tx.id] : [])))
        })
    })
    : Sink.make<A>({ name, inProcess: true, open: () => Effect.succeed({ write: (batch) => Effect.sync(() => append(batch)) }) })
  return Object.assign(sink, { items: items as ReadonlyArray<A> })
}
