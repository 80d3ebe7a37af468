import { eachRecord } from "./failure.ts"
import { KeyedMap } from "./KeyedMap.ts"
import type { Operator, RestoredState, StateWriter } from "./Operator.ts"

/** Input ordinals of a hash join. */
export const MAIN = 0
export const SIDE = 1

/**
 * Joins the main input (ordinal 0) with a side input (ordinal 1) held in a
 * hash table. The engine delivers the whole side input first (edge priority),
 * so the table is complete before the first main record arrives.
 */
export class HashJoin implements Operator<unknown, unknown> {
  private readonly table = new KeyedMap<Array<unknown>>()

  private readonly stage: string
  private readonly leftKey: (a: any) => unknown
  private readonly rightKey: (b: any) => unknown
  private readonly fn: (a: any, b: any) => unknown
  private readonly inner: boolean

  constructor(stage: string, leftKey: (a: any) => unknown, rightKey: (b: any) => unknown, fn: (a: any, b: any) => unknown, inner: boolean) {
    this.stage = stage
    this.leftKey = leftKey
    this.rightKey = rightKey
    this.fn = fn
    this.inner = inner
  }

  process(ordinal: number, batch: ReadonlyArray<unknown>, out: Array<unknown>): void {
    const { table, fn } = this
    if (ordinal === SIDE) {
      eachRecord(this.stage, batch, (b) => {
        const k = this.rightKey(b)
        const matches = table.get(k)
        if (matches) matches.push(b)
        else table.set(k, [b])
      })
      return
    }
    eachRecord(this.stage, batch, (a) => {
      const matches = table.get(this.leftKey(a))
      if (matches) for (const b of matches) out.push(fn(a, b))
      else if (!this.inner) out.push(fn(a, undefined))
    })
  }

  /** The side table is per instance (each holds all of it): saved whole, as local state. */
  saveState(state: StateWriter): void {
    state.local([...this.table.entries()])
  }

  restoreState({ local }: RestoredState): void {
    const [entries] = local as Array<Array<[unknown, Array<unknown>]>>
    for (const [k, matches] of entries ?? []) this.table.set(k, matches)
  }
}
