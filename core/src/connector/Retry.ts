/**
 * Faults at the edge: a connector whose server goes away (refused, reset,
 * timed out) retries with bounded exponential backoff and resumes from its
 * position; past the limit the job fails with a `ConnectorError` naming the
 * connector, the server and the last cause.
 */
import { Duration, Effect, Schedule } from "effect"
import { ConnectorError } from "../errors.ts"

export interface RetryOptions {
  /** Named in the error when the retries run out. */
  readonly server: string
  /** Retries after the first failure (default 5). */
  readonly times?: number | undefined
  /** The first delay, doubled at each retry up to `maxDelay` (default 100 ms, 5 s). */
  readonly delay?: Duration.Input | undefined
  readonly maxDelay?: Duration.Input | undefined
  /** Which failures to retry (default: all); others fail the job at once. */
  readonly retryable?: ((cause: unknown) => boolean) | undefined
}

/**
 * Runs `attempt` until it succeeds, after each failure running `reset` (to drop
 * a broken connection) and waiting its backoff; `onRetry` counts the retries.
 * Out of retries, it fails with a `ConnectorError`.
 */
export const retrying = <A, E, R>(
  connector: string,
  options: RetryOptions,
  attempt: Effect.Effect<A, E, R>,
  reset: Effect.Effect<void>,
  onRetry: () => void
): Effect.Effect<A, E | ConnectorError, R> => {
  const times = options.times ?? 5
  const maxDelay = Duration.toMillis(options.maxDelay ?? "5 seconds")
  const backoff = Schedule.modifyDelay(Schedule.exponential(options.delay ?? "100 millis"), ({ output }) =>
    Effect.succeed(Duration.min(output, Duration.millis(maxDelay))))
  let attempts = 0
  const once = Effect.tapError(
    Effect.suspend(() => {
      if (++attempts > 1) onRetry()
      return attempt
    }),
    () => reset
  )
  return once.pipe(
    Effect.retry({ schedule: backoff, times, while: (e: E) => options.retryable?.(e) ?? true }),
    Effect.mapError((cause) => (options.retryable?.(cause) ?? true) ? new ConnectorError({ connector, server: options.server, attempts, cause }) : cause)
  ) as Effect.Effect<A, E | ConnectorError, R>
}
