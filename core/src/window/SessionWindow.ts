import type { AggregateOp } from "../aggregate/AggregateOp.ts"
import { Expiry } from "../operator/Expiry.ts"
import { eachRecord, guarded } from "../operator/failure.ts"
import { KeyedMap } from "../operator/KeyedMap.ts"
import { forEachKeyed, type Operator, type RestoredState, type StateWriter } from "../operator/Operator.ts"
import { type Event, event } from "../pipeline/Event.ts"
import type { SessionWindow, WindowResult } from "./Window.ts"

interface Session {
  start: number
  /** Last event time + gap. */
  end: number
  acc: unknown
}

/**
 * Session windows, per key: an event opens `[t, t + gap)`; sessions that
 * overlap merge (their accumulators combine), so a session ends `gap` after
 * its last event. A session is emitted once the watermark passes its end.
 * Runs in one stage after the partitioned edge: sessions of a key can only be
 * merged where all its events meet.
 */
export class SessionWindowAggregate implements Operator<Event<unknown>, unknown> {
  private readonly sessions = new KeyedMap<Array<Session>>()
  private watermarkTime = -Infinity
  private lastEarly = 0
  /** Each key falls due at the end of its first session. */
  private readonly expiry: Expiry
  readonly late: Array<unknown> = []
  readonly tickInterval: number | undefined
  private readonly stage: string
  private readonly op: AggregateOp<any, any, any>
  private readonly key: ((a: any) => unknown) | undefined
  private readonly gap: number

  /** Results go on as `{ t: end - 1, v }` events (the window's last instant), or bare when only sinks read them. */
  private readonly timedOutput: boolean

  constructor(
    stage: string,
    op: AggregateOp<any, any, any>,
    key: ((a: any) => unknown) | undefined,
    window: SessionWindow,
    timedOutput: boolean
  ) {
    this.timedOutput = timedOutput
    this.stage = stage
    this.op = op
    this.key = key
    this.gap = window.gap
    this.expiry = new Expiry(window.gap / 64)
    this.tickInterval = window.earlyResultsPeriod
  }

  process(_ordinal: number, batch: ReadonlyArray<Event<unknown>>): void {
    const { op, key, gap, sessions } = this
    eachRecord(this.stage, batch as ReadonlyArray<Event<unknown>>, (e) => {
      if (e.t < this.watermarkTime) {
        this.late.push(e.v)
        return
      }
      const k = key === undefined ? undefined : key(e.v)
      let list = sessions.get(k)
      if (list === undefined) {
        list = []
        sessions.set(k, list)
      }
      const only = list.length === 1 ? list[0]! : undefined
      if (only !== undefined && only.start < e.t + gap && e.t < only.end) {
        // The common case, an event inside a key's one open session: extend it in place.
        only.start = Math.min(only.start, e.t)
        only.end = Math.max(only.end, e.t + gap)
        only.acc = op.accumulate(only.acc, e.v)
        this.expiry.set(k, only.end)
        return
      }
      let merged: Session = { start: e.t, end: e.t + gap, acc: op.accumulate(op.create(), e.v) }
      // Merge every session this event's interval touches, keeping the list sorted by start.
      const kept: Array<Session> = []
      for (const s of list) {
        if (s.start < merged.end && merged.start < s.end) {
          merged = { start: Math.min(s.start, merged.start), end: Math.max(s.end, merged.end), acc: op.combine(s.acc, merged.acc) }
        } else kept.push(s)
      }
      let at = kept.findIndex((s) => s.start > merged.start)
      if (at === -1) at = kept.length
      kept.splice(at, 0, merged)
      sessions.set(k, kept)
      this.expiry.set(k, kept[0]!.end)
    })
  }

  onWatermark(time: number, out: Array<unknown>): void {
    this.watermarkTime = time
    this.close(time, out)
  }

  complete(out: Array<unknown>): void {
    this.close(Infinity, out)
  }

  saveState(state: StateWriter): void {
    this.sessions.forEach((list, k) => state.keyed(k, list))
    state.local(this.watermarkTime)
  }

  restoreState(state: RestoredState): void {
    forEachKeyed(state, (k, list) => {
      this.sessions.set(k, list as Array<Session>)
      this.expiry.set(k, (list as Array<Session>)[0]!.end)
    })
    for (const w of state.local as Array<number>) this.watermarkTime = Math.max(this.watermarkTime, w)
  }

  onTick(now: number, out: Array<unknown>): void {
    if (this.tickInterval === undefined || now - this.lastEarly < this.tickInterval) return
    this.lastEarly = now
    for (const [k, list] of this.sessions.entries()) for (const s of list) this.emit(k, s, true, out)
  }

  /** Emits the sessions ending by `time`; only keys whose first session is due are visited. */
  private close(time: number, out: Array<unknown>) {
    for (const k of this.expiry.expire(time)) {
      const list = this.sessions.get(k)!
      let closed = 0
      while (closed < list.length && list[closed]!.end <= time) this.emit(k, list[closed++]!, false, out)
      if (closed === list.length) this.sessions.delete(k)
      else {
        list.splice(0, closed)
        this.expiry.set(k, list[0]!.end)
      }
    }
  }

  private emit(key: unknown, s: Session, isEarly: boolean, out: Array<unknown>) {
    const value = guarded(this.stage, s.acc, () => this.op.export(s.acc))
    const result: WindowResult<unknown, unknown> = { start: s.start, end: s.end, key, value, isEarly }
    out.push(this.timedOutput ? event(s.end - 1, result) : result)
  }
}
