import { Effect } from "effect"
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
          const end = Math.min(all.length, instance * per + per)
          return {
            position: () => at,
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
  // Per instance: records since the last barrier, and prepared transactions by snapshot id.
  const instances = new Map<number, { pending: Array<A>; prepared: Map<number, Array<A>> }>()
  const commit = (prepared: Map<number, Array<A>>, upTo: number) => {
    for (const id of [...prepared.keys()].sort((a, b) => a - b)) {
      if (id > upTo) break
      for (const r of prepared.get(id)!) items.push(r)
      prepared.delete(id)
    }
  }
  return Object.assign(
    Sink.make<A>({
      name: options?.name ?? "collect",
      inProcess: true,
      open: ({ instance, restoredSnapshot }) =>
        Effect.sync((): Sink.SinkWriter<A> => {
          if (!options?.transactional) {
            return {
              write: (batch) =>
                Effect.sync(() => {
                  for (let i = 0; i < batch.length; i++) items.push(batch[i]!)
                })
            }
          }
          let tx = instances.get(instance)
          if (!tx) instances.set(instance, (tx = { pending: [], prepared: new Map() }))
          const { prepared } = tx
          // After a restart: what the restored snapshot covers is committed, the rest replays.
          if (restoredSnapshot !== undefined) commit(prepared, restoredSnapshot)
          prepared.clear()
          tx.pending = []
          const state = tx
          return {
            write: (batch) => Effect.sync(() => void state.pending.push(...batch)),
            prepare: (id) =>
              Effect.sync(() => {
                prepared.set(id, state.pending)
                state.pending = []
              }),
            commit: (id) => Effect.sync(() => commit(prepared, id))
          }
        })
    }),
    { items: items as ReadonlyArray<A> }
  )
}
