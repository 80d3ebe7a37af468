import type { AggregateOp } from "../aggregate/AggregateOp.ts"
import { StageError } from "../errors.ts"
import { event } from "../pipeline/Event.ts"
import { eachRecord, guarded } from "./failure.ts"
import type { Expiry } from "./Expiry.ts"
import { KeyedMap } from "./KeyedMap.ts"
import { forEachKeyed, type Operator, type RestoredState, type StateWriter } from "./Operator.ts"

/** Keyed state as snapshot entries, and back. */
export const saveKeyed = <V>(map: KeyedMap<V>, state: StateWriter) => map.forEach((v, k) => state.keyed(k, v))
export const restoreKeyed = <V>(map: KeyedMap<V>, state: RestoredState) => forEachKeyed(state, (k, v) => map.set(k, v as V))

/** What the first stage of an aggregation sends over the partitioned edge. */
export type Partial = readonly [key: unknown, acc: unknown]

/**
 * First stage of a two-stage aggregation: accumulates locally and, when the
 * input is done, emits one `[key, accumulator]` per key it saw (one
 * accumulator, even for empty input, when there is no key, so the global
 * result of an empty input is the op's empty value).
 */
export class Accumulate implements Operator<unknown, Partial | unknown> {
  private readonly accs = new KeyedMap<unknown>()
  private acc: unknown

  private readonly stage: string
  private readonly op: AggregateOp<any, any, any>
  private readonly key: ((a: any) => unknown) | undefined

  constructor(stage: string, op: AggregateOp<any, any, any>, key: ((a: any) => unknown) | undefined) {
    this.stage = stage
    this.op = op
    this.key = key
    this.acc = key === undefined ? op.create() : undefined
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>): void {
    const { op, key, accs } = this
    if (key === undefined) {
      // The hot loop of a global aggregation: no closure per batch.
      const accumulate = op.accumulate
      let acc = this.acc
      let i = 0
      try {
        for (; i < batch.length; i++) acc = accumulate(acc, batch[i])
      } catch (cause) {
        throw new StageError({ stage: this.stage, record: batch[i], cause })
      }
      this.acc = acc
      return
    }
    eachRecord(this.stage, batch, (r) => {
      const k = key(r)
      const acc = accs.get(k)
      const next = op.accumulate(acc === undefined && !accs.has(k) ? op.create() : acc, r)
      if (next !== acc) accs.set(k, next)
    })
  }

  complete(out: Array<unknown>): void {
    if (this.key === undefined) out.push(this.acc)
    else for (const entry of this.accs.entries()) out.push(entry)
    this.accs.clear()
  }

  saveState(state: StateWriter): void {
    if (this.key === undefined) state.local(this.acc)
    else saveKeyed(this.accs, state)
  }

  restoreState(state: RestoredState): void {
    const { op, accs } = this
    if (this.key === undefined) for (const acc of state.local) this.acc = op.combine(this.acc, acc)
    // Local pre-aggregation: one key's accumulators may come from several old instances.
    else forEachKeyed(state, (k, acc) => accs.set(k, accs.has(k) ? op.combine(accs.get(k), acc) : acc))
  }
}

/**
 * Second stage: combines the partial accumulators of every upstream instance
 * per key, and exports the results when all inputs are done.
 */
export class Combine implements Operator<unknown, unknown> {
  private readonly accs = new KeyedMap<unknown>()
  private acc: unknown

  private readonly stage: string
  private readonly op: AggregateOp<any, any, any>
  private readonly keyed: boolean

  constructor(stage: string, op: AggregateOp<any, any, any>, keyed: boolean) {
    this.stage = stage
    this.op = op
    this.keyed = keyed
    this.acc = op.create()
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>): void {
    const { op, accs } = this
    if (!this.keyed) {
      eachRecord(this.stage, batch, (partial) => {
        this.acc = op.combine(this.acc, partial)
      })
      return
    }
    eachRecord(this.stage, batch, (partial) => {
      const [k, right] = partial as Partial
      accs.set(k, accs.has(k) ? op.combine(accs.get(k), right) : right)
    })
  }

  complete(out: Array<unknown>): void {
    const { op } = this
    if (!this.keyed) {
      out.push(guarded(this.stage, this.acc, () => op.export(this.acc)))
      return
    }
    for (const [key, acc] of this.accs.entries()) {
      out.push({ key, value: guarded(this.stage, acc, () => op.export(acc)) })
    }
    this.accs.clear()
  }

  saveState(state: StateWriter): void {
    if (!this.keyed) state.local(this.acc)
    else saveKeyed(this.accs, state)
  }

  restoreState(state: RestoredState): void {
    if (!this.keyed) for (const acc of state.local) this.acc = this.op.combine(this.acc, acc)
    else restoreKeyed(this.accs, state)
  }
}

/**
 * Emits the running aggregate of the record's key after every record (single
 * stage, after the partitioned edge); on timed input with the record's time.
 * With a ttl, a key idle for that long in event time starts over.
 */
export class RollingAggregate implements Operator<unknown, unknown> {
  private readonly accs = new KeyedMap<unknown>()
  timed = false
  ttl: number | undefined = undefined
  /** Set with a `ttl`: when each key falls idle. */
  expiry: Expiry | undefined = undefined

  private readonly stage: string
  private readonly op: AggregateOp<any, any, any>
  private readonly key: ((a: any) => unknown) | undefined

  constructor(stage: string, op: AggregateOp<any, any, any>, key: ((a: any) => unknown) | undefined) {
    this.stage = stage
    this.op = op
    this.key = key
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>, out: Array<unknown>): void {
    const { op, key, accs, timed } = this
    eachRecord(this.stage, batch, (input) => {
      const r = timed ? (input as { v: unknown }).v : input
      const k = key === undefined ? undefined : key(r)
      const acc = op.accumulate(accs.has(k) ? accs.get(k) : op.create(), r)
      accs.set(k, acc)
      const value = op.export(acc)
      const result = key === undefined ? value : { key: k, value }
      if (timed && this.expiry) this.expiry.extend(k, (input as { t: number }).t + this.ttl!)
      out.push(timed ? event((input as { t: number }).t, result) : result)
    })
  }

  onWatermark(time: number): void {
    if (this.expiry) for (const k of this.expiry.expire(time)) this.accs.delete(k)
  }

  saveState(state: StateWriter): void {
    this.accs.forEach((acc, k) => state.keyed(k, [acc, this.expiry?.get(k)]))
  }

  restoreState(state: RestoredState): void {
    forEachKeyed(state, (k, v) => {
      const [acc, due] = v as [unknown, number | undefined]
      this.accs.set(k, acc)
      if (due !== undefined) this.expiry?.set(k, due)
    })
  }
}

/**
 * Second stage of `cogroup`: input `ordinal` carries partial accumulators of
 * op number `ordinal`; results hold every input's export per key.
 */
export class CoGroupCombine implements Operator<Partial, unknown> {
  private readonly accs = new KeyedMap<Array<unknown>>()

  private readonly stage: string
  private readonly ops: ReadonlyArray<AggregateOp<any, any, any>>
  private readonly labels: ReadonlyArray<string> | undefined

  constructor(stage: string, ops: ReadonlyArray<AggregateOp<any, any, any>>, labels: ReadonlyArray<string> | undefined) {
    this.stage = stage
    this.ops = ops
    this.labels = labels
  }

  process(ordinal: number, batch: ReadonlyArray<Partial>): void {
    const op = this.ops[ordinal]!
    eachRecord(this.stage, batch, ([k, right]) => {
      let accs = this.accs.get(k)
      if (accs === undefined) {
        accs = this.ops.map((o) => o.create())
        this.accs.set(k, accs)
      }
      accs[ordinal] = op.combine(accs[ordinal], right)
    })
  }

  complete(out: Array<unknown>): void {
    for (const [key, accs] of this.accs.entries()) {
      const values = guarded(this.stage, accs, () => accs.map((acc, i) => this.ops[i]!.export(acc)))
      const labels = this.labels
      out.push({ key, value: labels ? Object.fromEntries(labels.map((l, i) => [l, values[i]])) : values })
    }
    this.accs.clear()
  }

  saveState(state: StateWriter): void {
    saveKeyed(this.accs, state)
  }

  restoreState(state: RestoredState): void {
    restoreKeyed(this.accs, state)
  }
}
