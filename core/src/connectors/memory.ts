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
    maxParallelism: Array.isArray(items) ? undefined : 1,
    open: ({ batchSize, instance, instances }) =>
      Effect.sync(() => {
        if (Array.isArray(items)) {
          const all = items as ReadonlyArray<A>
          const per = Math.ceil(all.length / instances)
          let at = instance * per
          const end = Math.min(all.length, at + per)
          return {
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

/** A sink collecting every record in memory; `items` holds them once the job ends. */
export interface CollectSink<A> extends Sink.Sink<A> {
  /** Records written so far (every job writing to this sink appends to it). */
  readonly items: ReadonlyArray<A>
}

/** Collects every record into an array (tests, small results). */
export const collect = <A>(options?: { readonly name?: string }): CollectSink<A> => {
  const items: Array<A> = []
  return Object.assign(
    Sink.make<A>({
      name: options?.name ?? "collect",
      open: () =>
        Effect.succeed({
          write: (batch) =>
            Effect.sync(() => {
              for (let i = 0; i < batch.length; i++) items.push(batch[i]!)
            })
        })
    }),
    { items: items as ReadonlyArray<A> }
  )
}
