import { identity } from "effect/Function"
import type { AggregateOp } from "../aggregate/AggregateOp.ts"
import { guarded } from "../operator/failure.ts"
import { KeyedMap } from "../operator/KeyedMap.ts"
import type { Operator, RestoredState, StateWriter } from "../operator/Operator.ts"
import { type Event, event } from "../pipeline/Event.ts"
import { type Column, frameEndOf, Frames } from "./Frames.ts"
import type { SlidingWindow, WindowResult } from "./Window.ts"

/** A frame's partial accumulator for one key, as sent over the partitioned edge. */
export type FramePartial = readonly [key: unknown, frameEnd: number, acc: unknown]

/** How a frame's column of keyed state is tagged in a snapshot. */
type FrameTag = readonly ["open" | "applied", end: number]

/** Each open frame as one column of keys and accumulators, tagged `["open", end]`. */
const saveFrames = (frames: Frames, state: StateWriter): void => {
  for (const end of frames.ends()) {
    const keys: Array<unknown> = []
    const accs: Array<unknown> = []
    frames.forEachEntry(end, (acc, k) => {
      keys.push(k)
      accs.push(acc)
    })
    state.keyedColumns(["open", end], keys, accs)
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
  const first = (v: unknown) => op.accumulate(op.create(), v)
  const fold = (acc: unknown, v: unknown) => op.accumulate(acc, v)
  let i = 0
  try {
    for (; i < batch.length; i++) {
      const e = batch[i]!
      if (e.t < watermark) {
        late.push(e.v)
        continue
      }
      frames.add(frameEndOf(e.t, step), key === undefined ? undefined : key(e.v), e.v, first, fold)
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
    saveFrames(this.frames, state)
    state.local(this.watermarkTime)
  }

  restoreState({ keyed, local }: RestoredState): void {
    // Local pre-aggregation: one key's frames may come from several old instances (the second stage combines them).
    for (const [tag, keys, accs] of keyed) this.frames.restore((tag as FrameTag)[1], keys, accs)
    if (local.length > 0) this.watermarkTime = Math.min(...(local as Array<number>))
  }

  private flush(upTo: number, out: Array<FramePartial>) {
    // Deleting the entry being visited is safe while iterating a Map.
    for (const end of this.frames.ends()) {
      if (end > upTo) continue
      const column = this.frames.take(end)!
      for (let i = 0; i < column.n; i++) out.push([column.keys[i], end, column.accs[i]])
      this.frames.recycle(column)
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
  /** Per key, the accumulator of the window sliding and how many frame entries it holds (to deduct down to none). */
  private readonly running = new KeyedMap<{ acc: unknown; frames: number }>()
  /** Frames already added to `running`, waiting to be deducted when they leave the window. */
  private readonly applied = new Map<number, Column>()
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
    const { op, frames } = this
    const combine = (acc: unknown, right: unknown) => op.combine(acc, right)
    const closed = this.nextEnd === undefined ? -Infinity : this.nextEnd - this.step
    const partials = batch as ReadonlyArray<FramePartial>
    let i = 0
    try {
      for (; i < partials.length; i++) {
        const [k, end, right] = partials[i]!
        // A frame behind a window already emitted (an input that was idle came back late).
        if (end <= closed) this.late.push(right)
        else frames.add(end, k, right, identity, combine)
      }
    } catch (cause) {
      guarded(this.stage, partials[i]?.[2], () => {
        throw cause
      })
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
    saveFrames(this.frames, state)
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
      if (kind === "open") this.frames.restore(end, keys, values)
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
    for (const end of this.frames.ends()) if (end > maxEnd) maxEnd = end
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
        const left = frames.take(end - size + step)
        if (left) frames.recycle(left)
      }
      this.nextEnd = end + step
    }
  }

  private hasFrameBefore(limit: number): boolean {
    for (const end of this.frames.ends()) if (end <= limit) return true
    return false
  }

  /** Adds the newest frame to the running accumulators, emits them, deducts the oldest frame. */
  private slide(end: number, out: Array<unknown>) {
    const { op, running, frames, applied, size, step } = this
    const newest = frames.take(end)
    if (newest) {
      const { keys, accs, n } = newest
      for (let i = 0; i < n; i++) {
        const r = running.get(keys[i])
        if (r === undefined) running.set(keys[i], { acc: op.combine(op.create(), accs[i]), frames: 1 })
        else {
          r.acc = op.combine(r.acc, accs[i])
          r.frames++
        }
      }
      applied.set(end, newest)
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
    frames.recycle(oldest)
  }

  /** Combines the frames of window `end` per key and emits the results. */
  private emitByCombining(end: number, isEarly: boolean, out: Array<unknown>) {
    const { op, frames, size, step } = this
    const accs = new KeyedMap<unknown>()
    const add = (acc: unknown, k: unknown) => accs.set(k, op.combine(accs.has(k) ? accs.get(k) : op.create(), acc))
    for (let frameEnd = end - size + step; frameEnd <= end; frameEnd += step) {
      frames.forEachEntry(frameEnd, add)
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
