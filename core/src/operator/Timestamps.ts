import { event } from "../pipeline/Event.ts"
import { eachRecord } from "./failure.ts"
import type { Operator, RestoredState, StateWriter } from "./Operator.ts"
import { type SplitTime, SplitTimes } from "./SplitTimes.ts"

/**
 * `withTimestamps`: wraps each record with its event time and derives the
 * watermark of this instance's input, the highest time seen minus the
 * allowed lag. An event further behind than that, record by record, is late:
 * it is put aside (counted, or sent to a window's late-events sink). The
 * watermark it reports is rounded down to `granularity` (when the planner
 * found that coarser watermarks change no result), so it advances once per
 * window frame rather than once per batch.
 *
 * Behind a source of splits (a Kafka partition, a file) it keeps this per split
 * (Jet's `EventTimeMapper`, Flink's per-split watermarks): an event is late by
 * its own split's time, and the watermark is the minimum over the splits
 * the source took on that are neither ended nor idle (no data for
 * `idleTimeout`, counted from when it was taken on), or, when every split ended
 * or is idle, the highest time seen; an idle split rejoins when data comes. A
 * split that is far ahead cannot make another one's events late.
 */
export class WithTimestamps implements Operator<unknown, unknown> {
  private top = -Infinity
  readonly late: Array<unknown> = []
  private readonly stage: string
  private readonly time: (a: any) => number
  private readonly allowedLag: number
  private readonly granularity: number
  /** Behind a source of splits: each one's highest time, and the split of the batch at hand. */
  private readonly splits: SplitTimes
  private split: SplitTime | undefined
  private bySplit = false
  private highest = -Infinity
  /** The watermark last reported: it never goes back when a split joins behind it. */
  private reported = -Infinity

  constructor(stage: string, time: (a: any) => number, allowedLag: number, granularity: number, idleTimeout = Infinity) {
    this.stage = stage
    this.time = time
    this.allowedLag = allowedLag
    this.granularity = granularity
    this.splits = new SplitTimes(idleTimeout)
  }

  fromSplit(split: string | undefined, added: ReadonlyArray<string>, ended: ReadonlyArray<string>): void {
    const now = Date.now()
    this.bySplit = true
    // A split holds the watermark back from when it is taken on, until it is idle or ends.
    for (const id of added) this.splits.add(id, now)
    for (const id of ended) this.splits.remove(id)
    if (split === undefined) return
    this.split = this.splits.enter(split, now)
    this.top = this.split.top
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>, out: Array<unknown>): void {
    const { time, allowedLag, late } = this
    let top = this.top
    eachRecord(this.stage, batch, (r) => {
      const t = time(r)
      if (typeof t !== "number" || Number.isNaN(t)) throw new TypeError(`event time must be a number, got ${String(t)}`)
      if (t < top - allowedLag) late.push(r)
      else {
        if (t > top) top = t
        out.push(event(t, r))
      }
    })
    this.top = top
    if (top > this.highest) this.highest = top
    if (this.split) this.splits.raise(this.split, top)
  }

  watermark(): number {
    // With no split holding it back (all ended or idle), the highest time seen is the bound.
    const top = this.bySplit ? this.splits.min(Date.now()) ?? this.highest : this.top
    const exact = top - this.allowedLag
    this.reported = Math.max(this.reported, this.granularity > 0 ? Math.floor(exact / this.granularity) * this.granularity : exact)
    return this.reported
  }

  saveState(state: StateWriter): void {
    state.local(this.top)
  }

  restoreState({ local }: RestoredState): void {
    // Several instances merged into one: the lowest keeps every replayed event on time.
    if (local.length > 0) this.top = Math.min(...(local as Array<number>))
  }
}
