import type { Effect } from "effect"

/**
 * The contract between the engine and an operator: the only thing the runtime
 * knows about one. Calls are synchronous and work on whole batches, so no
 * Effect, Promise or allocation is spent per record. `out` is a plain array the
 * operator appends to; the engine routes it downstream after the call.
 *
 * An operator never mutates the batches it receives: the same array may be
 * delivered to several consumers.
 */
export interface Operator<in I, out O> {
  /** Records from input `ordinal` (0 for a single-input operator). */
  process(ordinal: number, batch: ReadonlyArray<I>, out: Array<O>): void
  /** Input `ordinal` delivered its last record (all its upstream instances are done). */
  completeInput?(ordinal: number, out: Array<O>): void
  /** Every input is done: flush what the operator still holds. */
  complete?(out: Array<O>): void
  /**
   * Event time advanced to `time` on all inputs (the minimum over them): no
   * record with an earlier time will follow. Windows ending by then close here.
   */
  onWatermark?(time: number, out: Array<O>): void
  /** Called every `tickInterval` ms of processing time (early window results). */
  onTick?(now: number, out: Array<O>): void
  readonly tickInterval?: number | undefined
  /** An operator that assigns event times reports the watermark it derived so far. */
  watermark?(): number
  /**
   * The next batch comes from split `split` of the source of its vertex (undefined: no batch,
   * the source is waiting for data); since the
   * previous call the source took on the splits in `added` and those in `ended`
   * ended. An operator that assigns event times keeps a watermark per split.
   */
  fromSplit?(split: string | undefined, added: ReadonlyArray<string>, ended: ReadonlyArray<string>): void
  /** Records that arrived behind the watermark and were not used; counted, or sent to a side output. */
  readonly late?: Array<unknown> | undefined
  /**
   * On a snapshot barrier: write the state. Keyed entries are re-partitioned
   * on restore (a key goes to the instance owning its partition); local
   * values stay with the instance (or one that takes its place).
   */
  saveState?(state: StateWriter): void
  /** Before the first record after a restart: the state saved by the snapshot restored. */
  restoreState?(state: RestoredState): void
}

export interface StateWriter {
  keyed(key: unknown, value: unknown): void
  /**
   * Many keyed entries at once, as parallel arrays, all marked with `tag`
   * (e.g. the frame they belong to). Encoding two flat arrays costs a fraction
   * of encoding one small entry per key, which matters for millions of keys.
   */
  keyedColumns(tag: unknown, keys: ReadonlyArray<unknown>, values: ReadonlyArray<unknown>): void
  local(value: unknown): void
}

/** Keyed entries sharing a tag (`undefined` for those written one by one). */
export type KeyedColumns = readonly [tag: unknown, keys: ReadonlyArray<unknown>, values: ReadonlyArray<unknown>]

export interface RestoredState {
  readonly keyed: ReadonlyArray<KeyedColumns>
  readonly local: ReadonlyArray<unknown>
}

/** Visits every restored keyed entry. */
export const forEachKeyed = (state: RestoredState, f: (key: unknown, value: unknown, tag: unknown) => void): void => {
  for (const [tag, keys, values] of state.keyed) for (let i = 0; i < keys.length; i++) f(keys[i], values[i], tag)
}

/**
 * An operator that must wait (a user Effect per record, e.g. `mapEffect`). It
 * runs as its own step of the tasklet with a bound on in-flight work.
 */
export interface AsyncOperator<in I, out O> {
  // Requirements of user effects are provided by the job, whose type carries them.
  readonly processAsync: (batch: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<O>, unknown, any>
}

/** One step of a vertex's chain. */
export type Step = { readonly _tag: "Sync"; readonly op: Operator<any, any> } | {
  readonly _tag: "Async"
  readonly op: AsyncOperator<any, any>
}

export const sync = (op: Operator<any, any>): Step => ({ _tag: "Sync", op })
export const async = (op: AsyncOperator<any, any>): Step => ({ _tag: "Async", op })
