import { KeyedMap } from "../operator/KeyedMap.ts"

/**
 * A frame's entries as flat arrays: its first `n` keys and accumulators. A
 * key may appear more than once — partial accumulators, to be combined —
 * which is how a frame is built without a hash map of its own.
 */
export interface Column {
  readonly keys: Array<unknown>
  readonly accs: Array<unknown>
  n: number
}

/** A key's accumulator in the newest frame it has data in (`end`; -Infinity: none open). */
interface Slot {
  readonly key: unknown
  end: number
  acc: unknown
}

interface OpenFrame {
  /** Entries already settled: accumulators of keys that moved on to a later frame, restored ones. */
  readonly column: Column
  /** Slots that entered this frame (each once); those still at this `end` hold the rest of it. */
  readonly slots: Array<Slot>
}

/** The end of the frame (of length `step`) holding time `t`. */
export const frameEndOf = (t: number, step: number) => Math.floor(t / step) * step + step

const push = (column: Column, key: unknown, acc: unknown) => {
  column.keys[column.n] = key
  column.accs[column.n++] = acc
}

/**
 * Per open frame end, the accumulators of the keys that had events in it.
 * Each key has one slot, which follows it from frame to frame: a record of
 * the key's newest frame folds into it with a single lookup, and when the key
 * moves on its accumulator is appended to that frame's column. No frame has a
 * hash map that fills up, grows and dies each step (with many keys, the
 * young-generation GC promoted them, which made the latency tail); slots and
 * columns are reused.
 */
export class Frames {
  private readonly slots = new KeyedMap<Slot>()
  private readonly open = new Map<number, OpenFrame>()
  private readonly spareColumns: Array<Column> = []
  private readonly spareSlotLists: Array<Array<Slot>> = []
  /** Slots emptied by the last `take`: forgotten at the next one unless their key came back. */
  private emptied: Array<Slot> = []

  /**
   * Folds `item` into key `k`'s accumulator of frame `end`: `first(item)` when
   * there is none yet, `fold(acc, item)` after that.
   */
  add(end: number, k: unknown, item: unknown, first: (item: any) => unknown, fold: (acc: any, item: any) => unknown): void {
    let slot = this.slots.get(k)
    if (slot === undefined) {
      slot = { key: k, end: -Infinity, acc: undefined }
      this.slots.set(k, slot)
    }
    if (slot.end === end) slot.acc = fold(slot.acc, item)
    else if (end > slot.end) {
      if (slot.end !== -Infinity) push(this.open.get(slot.end)!.column, k, slot.acc)
      slot.end = end
      slot.acc = first(item)
      this.frame(end).slots.push(slot)
    } else {
      // Behind the key's newest frame (out of order, within the lag): an entry of its own.
      push(this.frame(end).column, k, first(item))
    }
  }

  /** Adds restored entries to frame `end`. */
  restore(end: number, keys: ReadonlyArray<unknown>, accs: ReadonlyArray<unknown>): void {
    const { column } = this.frame(end)
    for (let i = 0; i < keys.length; i++) push(column, keys[i], accs[i])
  }

  /** Removes frame `end` and returns all its entries (`recycle` the column when done with it). */
  take(end: number): Column | undefined {
    const frame = this.open.get(end)
    if (frame === undefined) return undefined
    this.open.delete(end)
    for (const slot of this.emptied) if (slot.end === -Infinity) this.slots.delete(slot.key)
    this.emptied = []
    const { column, slots } = frame
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!
      if (slot.end !== end) continue
      push(column, slot.key, slot.acc)
      slot.end = -Infinity
      slot.acc = undefined
      this.emptied.push(slot)
    }
    slots.length = 0
    this.spareSlotLists.push(slots)
    return column
  }

  recycle(column: Column): void {
    // What the column held must not stay reachable from the pool.
    column.keys.fill(undefined, 0, column.n)
    column.accs.fill(undefined, 0, column.n)
    column.n = 0
    this.spareColumns.push(column)
  }

  /** Visits every entry of frame `end` (a key may come more than once). */
  forEachEntry(end: number, f: (acc: unknown, key: unknown) => void): void {
    const frame = this.open.get(end)
    if (frame === undefined) return
    const { column, slots } = frame
    for (let i = 0; i < column.n; i++) f(column.accs[i], column.keys[i])
    for (const slot of slots) if (slot.end === end) f(slot.acc, slot.key)
  }

  ends(): IterableIterator<number> {
    return this.open.keys()
  }

  minEnd(): number | undefined {
    let min: number | undefined
    for (const end of this.open.keys()) if (min === undefined || end < min) min = end
    return min
  }

  private frame(end: number): OpenFrame {
    let frame = this.open.get(end)
    if (frame === undefined) {
      frame = { column: this.spareColumns.pop() ?? { keys: [], accs: [], n: 0 }, slots: this.spareSlotLists.pop() ?? [] }
      this.open.set(end, frame)
    }
    return frame
  }
}
