/**
 * Sources made of splits (Flink's split enumerator, Jet's partition
 * assignment): the input is a list of splits — a file, a partition, a key
 * range — each read on its own and each with its own position. Every instance
 * enumerates the same list and reads its share; the snapshot keeps a position
 * per split id, so a job restored with another number of instances deals the
 * splits again and each resumes from its own position.
 */
import { Effect, Exit, Scope } from "effect"
import { stableHash } from "../plan/partition.ts"
import * as Retry from "./Retry.ts"
import * as Source from "../pipeline/Source.ts"
import { FINAL_SNAPSHOT } from "../snapshot/Coordinator.ts"

/** How long a pull of an unbounded source with nothing to read waits before answering `[]`. */
const IDLE_WAIT_MS = 10

export interface Split {
  /** Unique among the splits of the source, stable across runs: positions are saved under it. */
  readonly id: string
}

/** One split being read. */
export interface SplitReader<out A> {
  /** The next batch of the split; `[]`: nothing right now; `undefined`: the split is finished. */
  readonly pull: Effect.Effect<ReadonlyArray<A> | undefined, unknown>
  /** The split's position after the records pulled so far (plain data). */
  readonly position: () => unknown
}

export interface SplitSourceOptions<A, S extends Split, R> {
  readonly name: string
  /** Whether every split ends: then an instance reads its splits one after another, else in turn. */
  readonly bounded: boolean
  readonly maxParallelism?: number | undefined
  readonly eventTime?: ((a: A) => number) | undefined
  /**
   * The splits of the input, the same in every instance (e.g. sorted); told which
   * instance asks and whether this is the first listing or a later discovery.
   */
  readonly enumerate: (ctx: { readonly instance: number; readonly instances: number; readonly initial: boolean }) => Effect.Effect<ReadonlyArray<S>, unknown, R>
  /**
   * Lists the splits again every this many milliseconds (an unbounded source:
   * new files, new partitions). Splits are then dealt by a hash of their id, so
   * a new one never moves another to a different instance.
   */
  readonly discoverEvery?: number | undefined
  /**
   * Retry a split whose reading fails (its server went away): it is opened again
   * at its position after a backoff; past the limit the job fails with a `ConnectorError`.
   */
  readonly retry?: Retry.RetryOptions | undefined
  /**
   * A snapshot is complete (see `SourceReader.commit`): told the position of each split of this
   * instance it saved (by split id; undefined: not started), to acknowledge them upstream
   * (a consumer group's offsets). After the job succeeded (`FINAL_SNAPSHOT`): the positions reached.
   */
  readonly commit?: ((positions: ReadonlyMap<string, unknown>) => Effect.Effect<void, unknown, R>) | undefined
  /** Opens `split` in its own scope (closed once it is finished), resuming after `position` when it has one. */
  readonly open: (split: S, position: unknown, batchSize: number) => Effect.Effect<SplitReader<A>, unknown, R | Scope.Scope>
}

/** What an instance saves: each of its splits' id, position (undefined: not started) and whether it is finished. */
type Positions = ReadonlyArray<readonly [id: string, position: unknown, finished: boolean]>

interface State<A, S> {
  readonly split: S
  position: unknown
  finished: boolean
  reader: SplitReader<A> | undefined
  scope: Scope.Closeable | undefined
}

/**
 * A source of splits: split j of the enumeration is read by instance j mod
 * instances (with discovery: the split whose id hashes to it).
 */
export const make = <A, S extends Split, R = never>(options: SplitSourceOptions<A, S, R>): Source.Source<A, Exclude<R, Scope.Scope>> =>
  Source.make({
    name: options.name,
    bounded: options.bounded,
    maxParallelism: options.maxParallelism,
    eventTime: options.eventTime,
    rescalable: true,
    open: ({ batchSize, instance, instances, restoredPositions }) =>
      Effect.gen(function*() {
        // Every instance of the restored execution saved the splits it read, whatever their number.
        const saved = new Map<string, Positions[number]>()
        for (const positions of restoredPositions ?? []) for (const p of positions as Positions) saved.set(p[0], p)
        const scope = yield* Effect.scope
        // Splits open as they are reached, with the services the source was opened with.
        const context = yield* Effect.context<R>()
        const { discoverEvery } = options
        const mine = (split: S, j: number) => (discoverEvery === undefined ? j : stableHash(split.id)) % instances === instance
        const stateOf = (split: S): State<A, S> => ({
          split,
          position: saved.get(split.id)?.[1],
          finished: saved.get(split.id)?.[2] ?? false,
          reader: undefined,
          scope: undefined
        })
        const states: Array<State<A, S>> = (yield* options.enumerate({ instance, instances, initial: true })).filter(mine).map(stateOf)
        const known = new Set(states.map((s) => s.split.id))
        let discovered = Date.now()
        /** New splits of this instance, once the discovery interval has passed. */
        const discover = Effect.gen(function*() {
          if (discoverEvery === undefined || Date.now() - discovered < discoverEvery) return
          discovered = Date.now()
          for (const split of (yield* Effect.provideContext(options.enumerate({ instance, instances, initial: false }), context)).filter(mine)) {
            if (!known.has(split.id)) {
              known.add(split.id)
              states.push(stateOf(split))
              added.push(split.id)
            }
          }
        })
        let cursor = 0
        let current: string | undefined
        const added = states.filter((s) => !s.finished).map((s) => s.split.id)
        const ended: Array<string> = []
        const take = (taken: Array<string>) => taken.length === 0 ? taken : taken.splice(0)
        let origin: Source.Origin = { position: undefined }
        // The positions saved in each snapshot not complete yet, for `commit`.
        const snapshots = new Map<number, Positions>()

        const finish = (s: State<A, S>) =>
          Effect.suspend(() => {
            s.finished = true
            ended.push(s.split.id)
            s.position = s.reader!.position()
            s.reader = undefined
            return Scope.close(s.scope!, Exit.void)
          })

        /** The next batch of split `s`, opening it first if needed; `undefined` once it is finished. */
        const read = (s: State<A, S>) =>
          Effect.gen(function*() {
            if (!s.reader) {
              s.scope = yield* Scope.fork(scope)
              // The source's context holds its own scope: the split's goes on top, so the split's resources close with it.
              s.reader = yield* Effect.provideContext(Scope.provide(options.open(s.split, s.position, batchSize), s.scope), context)
            }
            origin = { split: s.split.id, position: s.reader.position() }
            const batch = yield* s.reader.pull
            if (batch === undefined) yield* finish(s)
            return batch
          })
        /** After a failure: the split's connection is dropped, to be opened again at its position. */
        const reset = (s: State<A, S>) =>
          Effect.suspend(() => {
            if (s.reader) s.position = s.reader.position()
            s.reader = undefined
            return s.scope ? Scope.close(s.scope, Exit.void) : Effect.void
          })
        let retries = 0
        const { retry } = options
        const pullFrom = (s: State<A, S>) => retry ? Retry.retrying(options.name, retry, read(s), reset(s), () => void retries++) : read(s)

        return {
          splits: { current: () => current, takeAdded: () => take(added), takeEnded: () => take(ended) },
          retries: () => retries,
          origin: () => origin,
          position: (snapshot?: number): Positions => {
            const positions = states.map((s) => [s.split.id, s.reader ? s.reader.position() : s.position, s.finished] as const)
            if (snapshot !== undefined && options.commit) snapshots.set(snapshot, positions)
            return positions
          },
          commit: options.commit && ((snapshot: number) =>
            Effect.suspend(() => {
              const positions = snapshot === FINAL_SNAPSHOT ? states.map((s) => [s.split.id, s.reader ? s.reader.position() : s.position] as const) : snapshots.get(snapshot)
              for (const id of snapshots.keys()) if (id <= snapshot) snapshots.delete(id)
              return positions ? Effect.provideContext(options.commit!(new Map(positions.map((p) => [p[0], p[1]]))), context) : Effect.void
            })),
          pull: Effect.gen(function*() {
            yield* discover
            // One round over the splits at most: a bounded source stays on a split until it is
            // finished; an unbounded one takes them in turn, so none starves the others.
            for (let tried = 0; tried < states.length; tried++) {
              const s = states[cursor]!
              const batch = s.finished ? undefined : yield* pullFrom(s)
              if (batch === undefined || !options.bounded) cursor = (cursor + 1) % states.length
              if (batch !== undefined && batch.length > 0) {
                current = s.split.id
                return batch
              }
            }
            if (discoverEvery === undefined && states.every((s) => s.finished)) return undefined
            // Nothing right now: wait a little before saying so (the contract of an unbounded source).
            if (!options.bounded) yield* Effect.sleep(IDLE_WAIT_MS)
            return []
          })
        }
      })
  })
