import { event } from "../pipeline/Event.ts"
import { eachRecord } from "./failure.ts"
import type { Expiry } from "./Expiry.ts"
import { KeyedMap } from "./KeyedMap.ts"
import { restoreKeyed, saveKeyed } from "./Aggregation.ts"
import { forEachKeyed, type Operator, type RestoredState, type StateWriter } from "./Operator.ts"

/**
 * `mapStateful`: one user state per key, created on the key's first record.
 * On timed input the output keeps the input's event time, and with a `ttl` a
 * key's state is evicted once the watermark passes its last event time + ttl;
 * with `expireAt`, once the watermark reaches the time the state names.
 */
export class MapStateful implements Operator<unknown, unknown> {
  private readonly states = new KeyedMap<unknown>()
  timed = false
  ttl: number | undefined = undefined
  expireAt: ((state: any, key: any) => number) | undefined = undefined
  /** Set with a `ttl` or `expireAt`: when each key's state falls due. */
  expiry: Expiry | undefined = undefined
  onEvict: ((state: any, key: any, time: number) => unknown) | undefined = undefined

  private readonly stage: string
  private readonly key: ((a: any) => unknown) | undefined
  private readonly create: () => unknown
  private readonly fn: (state: any, item: any, key: any) => unknown

  constructor(stage: string, key: ((a: any) => unknown) | undefined, create: () => unknown, fn: (state: any, item: any, key: any) => unknown) {
    this.stage = stage
    this.key = key
    this.create = create
    this.fn = fn
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>, out: Array<unknown>): void {
    const { key, states, create, fn, timed } = this
    eachRecord(this.stage, batch, (input) => {
      const r = timed ? (input as { v: unknown }).v : input
      const k = key === undefined ? undefined : key(r)
      let state = states.get(k)
      if (state === undefined && !states.has(k)) {
        state = create()
        states.set(k, state)
      }
      const result = fn(state, r, k)
      const { expiry, expireAt } = this
      if (timed && expiry) {
        if (expireAt) expiry.set(k, expireAt(state, k))
        else expiry.extend(k, (input as { t: number }).t + this.ttl!)
      }
      if (result !== undefined) out.push(timed ? event((input as { t: number }).t, result) : result)
    })
  }

  onWatermark(time: number, out: Array<unknown>): void {
    if (this.expiry) for (const k of this.expiry.expire(time)) this.evict(k, time, out)
  }

  private evict(k: unknown, time: number, out: Array<unknown>): void {
    const state = this.states.get(k)
    this.states.delete(k)
    const result = this.onEvict?.(state, k, time)
    if (result !== undefined) out.push(event(time, result))
  }

  saveState(state: StateWriter): void {
    this.states.forEach((s, k) => state.keyed(k, [s, this.expiry?.get(k)]))
  }

  restoreState(state: RestoredState): void {
    forEachKeyed(state, (k, v) => {
      const [s, due] = v as [unknown, number | undefined]
      this.states.set(k, s)
      if (due !== undefined) this.expiry?.set(k, due)
    })
  }
}

/**
 * `distinct`: passes the first record of each key. Runs before the partitioned
 * edge too (`local`), so duplicates are dropped before they cross it.
 */
export class Distinct implements Operator<unknown, unknown> {
  private readonly seen = new KeyedMap<true>()

  private readonly stage: string
  private readonly key: (a: any) => unknown

  constructor(stage: string, key: (a: any) => unknown) {
    this.stage = stage
    this.key = key
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>, out: Array<unknown>): void {
    const { key, seen } = this
    eachRecord(this.stage, batch, (r) => {
      const k = key(r)
      if (!seen.has(k)) {
        seen.set(k, true)
        out.push(r)
      }
    })
  }

  saveState(state: StateWriter): void {
    saveKeyed(this.seen, state)
  }

  restoreState(state: RestoredState): void {
    restoreKeyed(this.seen, state)
  }
}
