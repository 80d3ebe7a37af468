import { eachRecord } from "./failure.ts"
import { KeyedMap } from "./KeyedMap.ts"
import type { Operator } from "./Operator.ts"

/** `mapStateful`: one user state per key, created on the key's first record. */
export class MapStateful implements Operator<unknown, unknown> {
  private readonly states = new KeyedMap<unknown>()

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
    const { key, states, create, fn } = this
    eachRecord(this.stage, batch, (r) => {
      const k = key === undefined ? undefined : key(r)
      let state = states.get(k)
      if (state === undefined && !states.has(k)) {
        state = create()
        states.set(k, state)
      }
      const result = fn(state, r, k)
      if (result !== undefined) out.push(result)
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
}
