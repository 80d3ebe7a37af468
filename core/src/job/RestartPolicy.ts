/**
 * When a job with a processing guarantee restarts after a failure, and when it
 * fails for good: Flink's failure-rate strategy, at most `maxFailures`
 * failures within any `interval`. A long-running job thus survives any number
 * of failures far enough apart, while one that keeps failing stops. An
 * unbounded interval counts every failure: `maxRestarts`.
 */
import { Duration } from "effect"
import { dual } from "effect/Function"
import { PlanError } from "../errors.ts"

export interface RestartPolicy {
  /** Failures within `interval` that the job restarts after; one more fails it. */
  readonly maxFailures: number
  readonly interval: Duration.Duration
}

const make = (maxFailures: number, interval: Duration.Input, option: string): RestartPolicy => {
  const duration = Duration.fromInputUnsafe(interval)
  if (!Number.isInteger(maxFailures) || maxFailures < 0) {
    throw new PlanError({ reason: `${option} must be an integer of at least 0, got ${maxFailures}` })
  }
  if (!Duration.isGreaterThan(duration, Duration.zero)) {
    throw new PlanError({ reason: `a restart policy's interval must be longer than 0, got ${Duration.format(duration)}` })
  }
  return { maxFailures, interval: duration }
}

/** At most `maxFailures` failures within any `interval`; throws `PlanError` for a negative count or an empty interval. */
export const failureRate = (maxFailures: number, interval: Duration.Input): RestartPolicy => make(maxFailures, interval, "maxFailures")

/** `n` failures in all, however far apart. */
export const maxRestarts = (n: number): RestartPolicy => make(n, Duration.infinity, "maxRestarts")

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
  if (options.restartPolicy) return failureRate(options.restartPolicy.maxFailures, options.restartPolicy.interval)
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
