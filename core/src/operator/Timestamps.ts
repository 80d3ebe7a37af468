import { event } from "../pipeline/Event.ts"
import { eachRecord } from "./failure.ts"
import type { Operator, RestoredState, StateWriter } from "./Operator.ts"

/**
 * `withTimestamps`: wraps each record with its event time and derives the
 * watermark of this instance's input, the highest time seen minus the
 * allowed lag. An event further behind than that, record by record, is late:
 * it is put aside (counted, or sent to a window's late-events sink). The
 * watermark it reports is rounded down to `granularity` (when the planner
 * found that coarser watermarks change no result), so it advances once per
 * window frame rather than once per batch.
 */
export class WithTimestamps implements Operator<unknown, unknown> {
  private top = -Infinity
  readonly late: Array<unknown> = []
  private readonly stage: string
  private readonly time: (a: any) => number
  private readonly allowedLag: number
  private readonly granularity: number

  constructor(stage: string, time: (a: any) => number, allowedLag: number, granularity: number) {
    this.stage = stage
    this.time = time
    this.allowedLag = allowedLag
    this.granularity = granularity
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
  }

  watermark(): number {
    const exact = this.top - this.allowedLag
    return this.granularity > 0 ? Math.floor(exact / this.granularity) * this.granularity : exact
  }

  saveState(state: StateWriter): void {
    state.local(this.top)
  }

  restoreState({ local }: RestoredState): void {
    // Several instances merged into one: the lowest keeps every replayed event on time.
    if (local.length > 0) this.top = Math.min(...(local as Array<number>))
  }
}
