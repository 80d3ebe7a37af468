/**
 * When a job with a processing guarantee restarts after a failure, and when it
 * fails for good: Flink's failure-rate strategy, at most `maxFailures`
 * failures within any `interval`. A long-running job thus survives any number
 * of failures far enough apart, while one that keeps failing stops. An
 * unbounded interval counts every failure: `maxRestarts`. Restarts back off
 * (Flink's exponential delay): the first after a quiet spell is at once, each
 * further one counted waits twice as long as the one before, up to a bound,
 * so a server down for a while is waited for rather than failed on.
 */
import { Duration } from "effect"
import { dual } from "effect/Function"
import { PlanError } from "../errors.ts"

export interface RestartPolicy {
  /** Failures within `interval` that the job restarts after; one more fails it. */
  readonly maxFailures: number
  readonly interval: Duration.Duration
  /** The wait before the second restart counted within `interval`, doubled for each one after. */
  readonly delay: Duration.Duration
  /** The longest wait before a restart. */
  readonly maxDelay: Duration.Duration
}

export interface Backoff {
  /** Default 50 ms. */
  readonly delay?: Duration.Input | undefined
  /** Default 2 seconds. */
  readonly maxDelay?: Duration.Input | undefined
}

const make = (maxFailures: number, interval: Duration.Input, option: string, backoff: Backoff = {}): RestartPolicy => {
  const duration = Duration.fromInputUnsafe(interval)
  const delay = Duration.fromInputUnsafe(backoff.delay ?? "50 millis")
  const maxDelay = Duration.fromInputUnsafe(backoff.maxDelay ?? "2 seconds")
  if (!Number.isInteger(maxFailures) || maxFailures < 0) {
    throw new PlanError({ reason: `${option} must be an integer of at least 0, got ${maxFailures}` })
  }
  if (!Duration.isGreaterThan(duration, Duration.zero)) {
    throw new PlanError({ reason: `a restart policy's interval must be longer than 0, got ${Duration.format(duration)}` })
  }
  if (Duration.isLessThan(maxDelay, delay)) {
    throw new PlanError({ reason: `a restart policy's maxDelay (${Duration.format(maxDelay)}) must not be shorter than its delay (${Duration.format(delay)})` })
  }
  return { maxFailures, interval: duration, delay, maxDelay }
}

/** At most `maxFailures` failures within any `interval`; throws `PlanError` for a negative count or an empty interval. */
export const failureRate = (maxFailures: number, interval: Duration.Input, backoff?: Backoff): RestartPolicy =>
  make(maxFailures, interval, "maxFailures", backoff)

/** `n` failures in all, however far apart. */
export const maxRestarts = (n: number, backoff?: Backoff): RestartPolicy => make(n, Duration.infinity, "maxRestarts", backoff)

/** 10 failures within 5 minutes. */
export const defaultPolicy: RestartPolicy = failureRate(10, "5 minutes")

/** A job's policy from its options: `restartPolicy`, or the `maxRestarts` shorthand, or the default. */
export const fromOptions = (options: {
  readonly restartPolicy?: RestartPolicy | undefined
  readonly maxRestarts?: number | undefined
}): RestartPolicy => {
  if (options.restartPolicy && options.maxRestarts !== undefined) {
    throw new PlanError({ reason: "restartPolicy and maxRestarts are two ways to say the same: give one" })
  }
  if (options.restartPolicy) {
    const { maxFailures, interval, delay, maxDelay } = options.restartPolicy
    return failureRate(maxFailures, interval, { delay, maxDelay })
  }
  return options.maxRestarts === undefined ? defaultPolicy : maxRestarts(options.maxRestarts)
}

/** The times (epoch milliseconds) of the failures that still count. */
export type Failures = ReadonlyArray<number>

/** A failure at `now`: the failures that count from then on, or `undefined` when the job fails for good. */
export const onFailure: {
  (policy: RestartPolicy, now: number): (failures: Failures) => Failures | undefined
  (failures: Failures, policy: RestartPolicy, now: number): Failures | undefined
} = dual(3, (failures: Failures, policy: RestartPolicy, now: number): Failures | undefined => {
  const since = now - Duration.toMillis(policy.interval)
  const counted = [...failures.filter((time) => time > since), now]
  return counted.length > policy.maxFailures ? undefined : counted
})

/** How long to wait before the restart after `failures` (what `onFailure` counted): none for the first. */
export const delayBefore: {
  (failures: Failures): (policy: RestartPolicy) => Duration.Duration
  (policy: RestartPolicy, failures: Failures): Duration.Duration
} = dual(2, (policy: RestartPolicy, failures: Failures): Duration.Duration => {
  if (failures.length <= 1) return Duration.zero
  const ms = Duration.toMillis(policy.delay) * 2 ** (failures.length - 2)
  return Duration.min(Duration.millis(ms), policy.maxDelay)
})
