/**
 * Window definitions. Times are event times in milliseconds (any
 * `Duration.Input`: `1000`, `"10 seconds"`, ...).
 */
import { Duration } from "effect"
import { dual } from "effect/Function"
import { PlanError } from "../errors.ts"

/** Fixed windows `[start, start + size)`: tumbling when `step === size`, sliding when smaller. */
export interface SlidingWindow {
  readonly _tag: "Sliding"
  readonly size: number
  readonly step: number
  readonly earlyResultsPeriod: number | undefined
}

/** Per-key windows that stay open while events keep coming less than `gap` apart. */
export interface SessionWindow {
  readonly _tag: "Session"
  readonly gap: number
  readonly earlyResultsPeriod: number | undefined
}

export type WindowDefinition = SlidingWindow | SessionWindow

/** What a windowed aggregation emits per window (and key). */
export interface WindowResult<out K, out V> {
  readonly start: number
  readonly end: number
  readonly key: K
  readonly value: V
  /** A running value of a window that is not closed yet (see `earlyResults`). */
  readonly isEarly: boolean
}

const millis = (name: string, input: Duration.Input): number => {
  const ms = Duration.toMillis(input)
  if (!Number.isFinite(ms) || ms <= 0 || !Number.isInteger(ms)) {
    throw new PlanError({ reason: `${name} must be a positive whole number of milliseconds, got ${String(input)}` })
  }
  return ms
}

/** Back-to-back windows of `size`. */
export const tumbling = (size: Duration.Input): SlidingWindow => {
  const ms = millis("tumbling window size", size)
  return { _tag: "Sliding", size: ms, step: ms, earlyResultsPeriod: undefined }
}

/**
 * Windows of `size` starting every `step` (`size` a multiple of `step`). Each
 * record is aggregated once into its frame of length `step`; windows combine
 * frames, and slide by deducting the frame that leaves when the op can.
 */
export const sliding = (size: Duration.Input, step: Duration.Input): SlidingWindow => {
  const sizeMs = millis("sliding window size", size)
  const stepMs = millis("sliding window step", step)
  if (sizeMs % stepMs !== 0) {
    throw new PlanError({ reason: `sliding window size ${sizeMs} ms is not a multiple of its step ${stepMs} ms` })
  }
  return { _tag: "Sliding", size: sizeMs, step: stepMs, earlyResultsPeriod: undefined }
}

/** A window per key per burst of events less than `gap` apart; it ends `gap` after its last event. */
export const session = (gap: Duration.Input): SessionWindow => ({
  _tag: "Session",
  gap: millis("session gap", gap),
  earlyResultsPeriod: undefined
})

/** Also emit the running result of open windows every `period` of processing time (`isEarly: true`). */
export const earlyResults: {
  (period: Duration.Input): <W extends WindowDefinition>(self: W) => W
  <W extends WindowDefinition>(self: W, period: Duration.Input): W
} = dual(2, <W extends WindowDefinition>(self: W, period: Duration.Input): W => ({
  ...self,
  earlyResultsPeriod: millis("early results period", period)
}))
