import type { Effect, Scope } from "effect"

/** Where one source instance sits in the job. */
export interface SourceContext {
  readonly instance: number
  readonly instances: number
  /** Preferred number of records per batch. */
  readonly batchSize: number
  /** After a restart: the position this instance reported in the snapshot restored (replay from there). */
  readonly restoredPosition?: unknown
  /**
   * After a restart: the positions every instance of the source reported, for a
   * `rescalable` source restored with another number of instances.
   */
  readonly restoredPositions?: ReadonlyArray<unknown> | undefined
}

/** A running source instance, pulled by its tasklet one batch at a time. */
export interface SourceReader<out A> {
  /**
   * The next batch. An empty array means "nothing right now" (an unbounded source
   * should wait a little before answering that); `undefined` means exhausted.
   */
  readonly pull: Effect.Effect<ReadonlyArray<A> | undefined, unknown>
  /**
   * A replayable source's position after the records pulled so far (plain
   * data). Saved in each snapshot (told its id) and handed back as
   * `restoredPosition`, so processing guarantees hold across a restart.
   */
  readonly position?: ((snapshot?: number) => unknown) | undefined
  /**
   * Snapshot `snapshot` (the id `position` was called with) is complete and
   * durable: a source that acknowledges input upstream (a replication slot, a
   * consumer group) may release everything up to the position it saved in it;
   * what follows may still replay. Called in order; `FINAL_SNAPSHOT` once the
   * whole job has succeeded (everything read so far is done with).
   */
  readonly commit?: ((snapshot: number) => Effect.Effect<void, unknown>) | undefined
  /**
   * Where the last batch pulled came from, named in dead letters and decoding
   * errors. Without it: the reader's `position` before the pull.
   */
  readonly origin?: (() => Origin) | undefined
  /** Times the source retried its server (shown in the job's metrics). */
  readonly retries?: (() => number) | undefined
  /**
   * How far a bounded source got: `done` of `total`, in units of its own
   * (records, bytes). `Tributary.run` shows it as a progress bar.
   */
  readonly progress?: (() => { readonly done: number; readonly total: number }) | undefined
  /**
   * A source of splits (`Splits.make`): the split the batch `pull` returned last
   * came from, and the splits this instance took on and that ended since the
   * previous call. A timestamps stage fused behind the source keeps a watermark per split.
   */
  readonly splits?: {
    readonly current: () => string | undefined
    readonly takeAdded: () => ReadonlyArray<string>
    readonly takeEnded: () => ReadonlyArray<string>
  } | undefined
}

/** Where a batch came from: its split (of a source of splits) and the position before it. */
export interface Origin {
  readonly split?: string | undefined
  /** Reading again from here reads the batch again. */
  readonly position: unknown
}

export const SourceTypeId: unique symbol = Symbol.for("tributary/Source")

/**
 * A source of records as a value. `open` runs once per instance inside the job's
 * scope, so connections and file handles are released when the job ends.
 * Failures are wrapped by the engine into a `SourceError` naming the source.
 */
export interface Source<out A, out R = never> {
  readonly [SourceTypeId]: { readonly _R: (_: never) => R }
  readonly name: string
  /**
   * Whether the source ends (its reader answers `undefined` at some point). The
   * planner refuses stages that need the whole input (a global `aggregate`,
   * `sort`, a join's side) over an unbounded one: they would never emit.
   */
  readonly bounded: boolean
  /** At most this many instances (1 for a source that cannot be split). */
  readonly maxParallelism?: number | undefined
  /**
   * Its positions are per split, not per instance (`Splits.make`): a snapshot of it
   * restores with any number of instances. Otherwise an instance's position belongs
   * to the slice of input it read, and the number of instances must stay.
   */
  readonly rescalable?: boolean | undefined
  /** The event time a record carries from its origin, for `Stage.withNativeTimestamps`. */
  readonly eventTime?: ((a: any) => number) | undefined
  /** Runs in the tasklet's scope; its requirements are the `R` above (plus `Scope`). */
  readonly open: (ctx: SourceContext) => Effect.Effect<SourceReader<A>, unknown, unknown>
}

/** Builds a source from its parts. */
export const make = <A, R = never>(def: {
  readonly name: string
  readonly bounded: boolean
  readonly maxParallelism?: number | undefined
  readonly rescalable?: boolean | undefined
  readonly eventTime?: ((a: A) => number) | undefined
  readonly open: (ctx: SourceContext) => Effect.Effect<SourceReader<A>, unknown, R>
}): Source<A, Exclude<R, Scope.Scope>> => ({ [SourceTypeId]: variance, ...def })

const variance = { _R: (_: never) => _ }
