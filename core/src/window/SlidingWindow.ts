import type { AggregateOp } from "../aggregate/AggregateOp.ts"
import { guarded } from "../operator/failure.ts"
import { KeyedMap } from "../operator/KeyedMap.ts"
import type { Operator, RestoredState, StateWriter } from "../operator/Operator.ts"
import { type Event, event } from "../pipeline/Event.ts"
import type { SlidingWindow, WindowResult } from "./Window.ts"

/** A frame's partial accumulator for one key, as sent over the partitioned edge. */
export type FramePartial = readonly [key: unknown, frameEnd: number, acc: unknown]

/** How a frame's column of keyed state is tagged in a snapshot. */
type FrameTag = readonly ["open" | "applied", end: number]

/**
 * A frame already added to the running accumulators, kept to be deducted when
 * it leaves the window: its first `n` keys and accumulators, as flat arrays
 * (far less for the GC to trace than a Map). The arrays are reused for later
 * frames, so a long window does not keep promoting fresh ones to the old
 * generation (whose collections were the latency tail).
 */
interface AppliedFrame {
  readonly keys: Array<unknown>
  readonly accs: Array<unknown>
  n: number
}

/** The end of the frame (of length `step`) holding time `t`. */
const frameEndOf = (t: number, step: number) => Math.floor(t / step) * step + step

/** Per frame end, the accumulators of the keys that had events in it. */
class Frames {
  readonly byEnd = new Map<number, KeyedMap<unknown>>()

  at(end: number): KeyedMap<unknown> {
    let frame = this.byEnd.get(end)
    if (frame === undefined) {
      frame = new KeyedMap()
      this.byEnd.set(end, frame)
    }
    return frame
  }

  /** Each frame as one column of keys and accumulators, tagged `["open", end]`. */
  save(state: StateWriter): void {
    for (const [end, frame] of this.byEnd) {
      const keys: Array<unknown> = []
      const accs: Array<unknown> = []
      frame.forEach((acc, k) => {
        keys.push(k)
        accs.push(acc)
      })
      state.keyedColumns(["open", end], keys, accs)
    }
  }

  /** Adds a restored frame; a key's accumulators from several old instances combine. */
  restore(end: number, keys: ReadonlyArray<unknown>, accs: ReadonlyArray<unknown>, combine: (a: unknown, b: unknown) => unknown): void {
    const frame = this.at(end)
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]
      frame.set(k, frame.has(k) ? combine(frame.get(k), accs[i]) : accs[i])
    }
  }

  minEnd(): number | undefined {
    let min: number | undefined
    for (const end of this.byEnd.keys()) if (min === undefined || end < min) min = end
    return min
  }
}

/** Accumulates events of `batch` into frames; events behind `watermark` go to `late`. */
const accumulateEvents = (
  stage: string,
  op: AggregateOp<any, any, any>,
  key: ((a: any) => unknown) | undefined,
  step: number,
  frames: Frames,
  watermark: number,
  batch: ReadonlyArray<Event<unknown>>,
  late: Array<unknown>
) => {
  let i = 0
  try {
    for (; i < batch.length; i++) {
      const e = batch[i]!
      if (e.t < watermark) {
        late.push(e.v)
        continue
      }
      const frame = frames.at(frameEndOf(e.t, step))
      const k = key === undefined ? undefined : key(e.v)
      const acc = frame.get(k)
      const next = op.accumulate(acc === undefined && !frame.has(k) ? op.create() : acc, e.v)
      if (next !== acc) frame.set(k, next)
    }
  } catch (cause) {
    guarded(stage, batch[i]?.v, () => {
      throw cause
    })
  }
}

/**
 * First stage of a two-stage windowed aggregation: accumulates events into
 * frames locally and, when the watermark passes a frame's end, sends the
 * frame's per-key accumulators on to be combined per key.
 */
export class FrameAccumulate implements Operator<Event<unknown>, FramePartial> {
  private readonly frames = new Frames()
  private watermarkTime = -Infinity
  readonly late: Array<unknown> = []
  private readonly stage: string
  private readonly op: AggregateOp<any, any, any>
  private readonly key: ((a: any) => unknown) | undefined
  private readonly step: number

  constructor(stage: string, op: AggregateOp<any, any, any>, key: ((a: any) => unknown) | undefined, window: SlidingWindow) {
    this.stage = stage
    this.op = op
    this.key = key
    this.step = window.step
  }

  process(_ordinal: number, batch: ReadonlyArray<Event<unknown>>): void {
    accumulateEvents(this.stage, this.op, this.key, this.step, this.frames, this.watermarkTime, batch, this.late)
  }

  onWatermark(time: number, out: Array<FramePartial>): void {
    this.watermarkTime = time
    this.flush(time, out)
  }

  complete(out: Array<FramePartial>): void {
    this.flush(Infinity, out)
  }

  saveState(state: StateWriter): void {
    this.frames.save(state)
    state.local(this.watermarkTime)
  }

  restoreState({ keyed, local }: RestoredState): void {
    // Local pre-aggregation: one key's frames may come from several old instances.
    for (const [tag, keys, accs] of keyed) this.frames.restore((tag as FrameTag)[1], keys, accs, this.op.combine)
    if (local.length > 0) this.watermarkTime = Math.min(...(local as Array<number>))
  }

  private flush(upTo: number, out: Array<FramePartial>) {
    for (const [end, frame] of this.frames.byEnd) {
      if (end > upTo) continue
      frame.forEach((acc, k) => out.push([k, end, acc]))
      this.frames.byEnd.delete(end)
    }
  }
}

/**
 * Tumbling and sliding windows. Input is either events (single stage) or the
 * frame partials of `FrameAccumulate` (second stage). When the watermark
 * passes a window's end the window is emitted for every key it holds. With a
 * `deduct`, a running accumulator per key slides: add the newest frame,
 * emit, deduct the oldest, so a window costs the same whatever `size / step`.
 */
export class SlidingWindowAggregate implements Operator<unknown, unknown> {
  private readonly frames = new Frames()
  private readonly running = new KeyedMap<{ acc: unknown; frames: number }>()
  /** Frames already added to `running`, waiting to be deducted when they leave the window. */
  private readonly applied = new Map<number, AppliedFrame>()
  /** Applied frames that left the window, their arrays ready for another. */
  private readonly spare: Array<AppliedFrame> = []
  /** End of the next window to emit; windows before it are closed. */
  private nextEnd: number | undefined = undefined
  private watermarkTime = -Infinity
  private lastEarly = 0
  readonly late: Array<unknown> = []
  readonly tickInterval: number | undefined
  private readonly stage: string
  private readonly op: AggregateOp<any, any, any>
  private readonly key: ((a: any) => unknown) | undefined
  private readonly size: number
  private readonly step: number
  private readonly fromFrames: boolean
  /** Results go on as `{ t: end - 1, v }` events, or bare when only sinks read them. */
  private readonly timedOutput: boolean

  constructor(
    stage: string,
    op: AggregateOp<any, any, any>,
    key: ((a: any) => unknown) | undefined,
    window: SlidingWindow,
    fromFrames: boolean,
    timedOutput: boolean
  ) {
    this.timedOutput = timedOutput
    this.stage = stage
    this.op = op
    this.key = key
    this.size = window.size
    this.step = window.step
    this.fromFrames = fromFrames
    this.tickInterval = window.earlyResultsPeriod
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>): void {
    if (!this.fromFrames) {
      accumulateEvents(this.stage, this.op, this.key, this.step, this.frames, this.watermarkTime, batch as ReadonlyArray<Event<unknown>>, this.late)
      return
    }
    const { op } = this
    const closed = this.nextEnd === undefined ? -Infinity : this.nextEnd - this.step
    for (const [k, end, right] of batch as ReadonlyArray<FramePartial>) {
      // A frame behind a window already emitted (an input that was idle came back late).
      if (end <= closed) {
        this.late.push(right)
        continue
      }
      const frame = this.frames.at(end)
      frame.set(k, frame.has(k) ? guarded(this.stage, right, () => op.combine(frame.get(k), right)) : right)
    }
  }

  onWatermark(time: number, out: Array<unknown>): void {
    this.watermarkTime = time
    this.closeUpTo(time, out)
  }

  complete(out: Array<unknown>): void {
    this.closeUpTo(Infinity, out)
  }

  /**
   * Keyed, so it can be re-partitioned: the open frames and the frames already
   * in the running accumulators (to deduct later), a column per frame; each
   * key's running accumulator. Locally: the next window to emit.
   */
  saveState(state: StateWriter): void {
    this.frames.save(state)
    for (const [end, { keys, accs, n }] of this.applied) state.keyedColumns(["applied", end], keys.slice(0, n), accs.slice(0, n))
    this.running.forEach((r, k) => state.keyed(k, [r.acc, r.frames]))
    state.local([this.nextEnd, this.watermarkTime])
  }

  restoreState({ keyed, local }: RestoredState): void {
    for (const [tag, keys, values] of keyed) {
      if (tag === undefined) {
        for (let i = 0; i < keys.length; i++) {
          const [acc, frames] = values[i] as [unknown, number]
          this.running.set(keys[i], { acc, frames })
        }
        continue
      }
      const [kind, end] = tag as FrameTag
      if (kind === "open") this.frames.restore(end, keys, values, this.op.combine)
      else {
        let flat = this.applied.get(end)
        if (!flat) this.applied.set(end, (flat = { keys: [], accs: [], n: 0 }))
        flat.keys.push(...keys)
        flat.accs.push(...values)
        flat.n = flat.keys.length
      }
    }
    // Aligned barriers follow the same watermarks everywhere: instances agree on these.
    for (const [nextEnd, watermark] of local as Array<[number | undefined, number]>) {
      if (nextEnd !== undefined) this.nextEnd = Math.max(this.nextEnd ?? -Infinity, nextEnd)
      this.watermarkTime = Math.max(this.watermarkTime, watermark)
    }
  }

  onTick(now: number, out: Array<unknown>): void {
    if (this.tickInterval === undefined || now - this.lastEarly < this.tickInterval) return
    this.lastEarly = now
    let maxEnd = -Infinity
    for (const end of this.frames.byEnd.keys()) if (end > maxEnd) maxEnd = end
    const first = this.nextEnd ?? this.frames.minEnd()
    if (first === undefined) return
    for (let end = first; end < maxEnd + this.size; end += this.step) this.emitByCombining(end, true, out)
  }

  private closeUpTo(time: number, out: Array<unknown>) {
    const { frames, step, size } = this
    while (true) {
      let end = this.nextEnd
      if (end === undefined || (this.running.size === 0 && !this.hasFrameBefore(end + size - step))) {
        // Nothing open at `end`: the next window to emit is the first holding data. Only
        // committed once emitted, as a frame with an earlier end may still come before `time`.
        const min = frames.minEnd()
        if (min === undefined) return
        end = end === undefined ? min : Math.max(end, min)
      }
      if (end > time) return
      if (this.op.deduct) this.slide(end, out)
      else {
        this.emitByCombining(end, false, out)
        frames.byEnd.delete(end - size + step)
      }
      this.nextEnd = end + step
    }
  }

  private hasFrameBefore(limit: number): boolean {
    for (const end of this.frames.byEnd.keys()) if (end <= limit) return true
    return false
  }

  /** Adds the newest frame to the running accumulators, emits them, deducts the oldest frame. */
  private slide(end: number, out: Array<unknown>) {
    const { op, running, frames, applied, size, step } = this
    const newest = frames.byEnd.get(end)
    if (newest) {
      const flat = this.spare.pop() ?? { keys: [], accs: [], n: 0 }
      const { keys, accs } = flat
      let n = 0
      newest.forEach((acc, k) => {
        keys[n] = k
        accs[n++] = acc
        const r = running.get(k)
        if (r === undefined) running.set(k, { acc: op.combine(op.create(), acc), frames: 1 })
        else {
          r.acc = op.combine(r.acc, acc)
          r.frames++
        }
      })
      // What an earlier, bigger frame left beyond `n` must not stay reachable.
      for (let i = n; i < flat.n; i++) keys[i] = accs[i] = undefined
      flat.n = n
      frames.byEnd.delete(end)
      applied.set(end, flat)
    }
    running.forEach((r, k) => this.emit(end, k, r.acc, false, out))
    const oldestEnd = end - size + step
    const oldest = applied.get(oldestEnd)
    if (!oldest) return
    applied.delete(oldestEnd)
    const { keys, accs, n } = oldest
    for (let i = 0; i < n; i++) {
      const r = running.get(keys[i])!
      if (--r.frames === 0) running.delete(keys[i])
      else r.acc = op.deduct!(r.acc, accs[i])
    }
    this.spare.push(oldest)
  }

  /** Combines the frames of window `end` per key and emits the results. */
  private emitByCombining(end: number, isEarly: boolean, out: Array<unknown>) {
    const { op, frames, size, step } = this
    const accs = new KeyedMap<unknown>()
    const add = (acc: unknown, k: unknown) => accs.set(k, op.combine(accs.has(k) ? accs.get(k) : op.create(), acc))
    for (let frameEnd = end - size + step; frameEnd <= end; frameEnd += step) {
      frames.byEnd.get(frameEnd)?.forEach(add)
      const flat = this.applied.get(frameEnd)
      if (flat) for (let i = 0; i < flat.n; i++) add(flat.accs[i], flat.keys[i])
    }
    for (const [k, acc] of accs.entries()) this.emit(end, k, acc, isEarly, out)
  }

  private emit(end: number, key: unknown, acc: unknown, isEarly: boolean, out: Array<unknown>) {
    const value = guarded(this.stage, acc, () => this.op.export(acc))
    const result: WindowResult<unknown, unknown> = { start: end - this.size, end, key, value, isEarly }
    // Timed at the window's last instant, so a window over these results on the same grid
    // (e.g. the top keys per window) holds them in the window of the same end, and closes
    // with the same watermark instead of one step later.
    out.push(this.timedOutput ? event(end - 1, result) : result)
  }
}
