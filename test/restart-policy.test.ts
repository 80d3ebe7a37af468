/** The failure-rate restart policy: its arithmetic, and an embedded job that follows it. */
import { Data, Duration, Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as Registry from "../cluster/src/coordinator/Registry.ts"
import { PlanError, Pipeline, RestartPolicy, Sinks, Sources, Stage, Tributary, Unrecoverable } from "../core/src/index.ts"

/** Feeds failures at `times` (ms) to `policy`: how many restarts it allowed before failing the job (all: it never did). */
const restartsAllowed = (policy: RestartPolicy.RestartPolicy, times: ReadonlyArray<number>) => {
  let failures: RestartPolicy.Failures = []
  for (const [i, time] of times.entries()) {
    const counted = RestartPolicy.onFailure(failures, policy, time)
    if (!counted) return i
    failures = counted
  }
  return times.length
}

describe("RestartPolicy", () => {
  const policy = RestartPolicy.failureRate(3, "1 minute")

  it("N+1 failures within the interval fail the job; the N before restart it", () => {
    expect(restartsAllowed(policy, [0, 10_000, 20_000, 30_000])).toBe(3)
  })

  it("N+1 failures spread beyond the interval do not: only those within any interval count", () => {
    expect(restartsAllowed(policy, [0, 30_000, 50_000, 61_000, 100_000, 125_000])).toBe(6)
    // A long-running job loses a member now and then, for ever.
    expect(restartsAllowed(policy, Array.from({ length: 100 }, (_, i) => i * 25_000))).toBe(100)
    // The failures of any sliding minute count, not those of fixed minutes.
    expect(restartsAllowed(policy, [0, 50_000, 70_000, 80_000, 100_000])).toBe(4)
  })

  it("is dual", () => {
    expect(RestartPolicy.onFailure(policy, 5)([1])).toEqual([1, 5])
    expect(RestartPolicy.onFailure([1, 2, 3], policy, 4)).toBeUndefined()
  })

  it("maxRestarts n: n failures in all, however far apart; 0 fails on the first", () => {
    const days = Array.from({ length: 11 }, (_, i) => i * Duration.toMillis("1 day"))
    expect(restartsAllowed(RestartPolicy.maxRestarts(10), days)).toBe(10)
    expect(restartsAllowed(RestartPolicy.fromOptions({ maxRestarts: 0 }), [0])).toBe(0)
  })

  it("backs off: the first restart at once, each further one counted twice as long after, up to maxDelay", () => {
    const backoff = RestartPolicy.failureRate(10, "5 minutes", { delay: "100 millis", maxDelay: "1 second" })
    const delays = Array.from({ length: 7 }, (_, n) => Duration.toMillis(RestartPolicy.delayBefore(backoff, Array.from({ length: n + 1 }, (_, i) => i))))
    expect(delays).toEqual([0, 100, 200, 400, 800, 1000, 1000])
    expect(RestartPolicy.delayBefore([1, 2])(RestartPolicy.defaultPolicy)).toEqual(Duration.millis(50))
    expect(() => RestartPolicy.failureRate(1, "1 minute", { delay: "2 seconds", maxDelay: "1 second" })).toThrow("must not be shorter than its delay")
  })

  it("a cluster's registry keeps a policy as JSON, an unbounded interval as null", () => {
    for (const p of [policy, RestartPolicy.maxRestarts(4, { delay: "1 second", maxDelay: "1 minute" })]) {
      const kept = JSON.parse(JSON.stringify({ guarantee: "none", parallelism: 1, snapshotIntervalMs: 1, scaleUpDelayMs: 1, ...Registry.encodePolicy(p) }))
      expect(Registry.decodePolicy(kept)).toEqual(p)
    }
    expect(Registry.encodePolicy(RestartPolicy.maxRestarts(4)).failureIntervalMs).toBeNull()
  })

  it("options: the default, the shorthand, and plan errors for mistakes", () => {
    expect(RestartPolicy.fromOptions({})).toEqual(RestartPolicy.defaultPolicy)
    expect(RestartPolicy.fromOptions({ maxRestarts: 4 }).interval).toEqual(Duration.infinity)
    expect(() => RestartPolicy.fromOptions({ restartPolicy: policy, maxRestarts: 4 })).toThrow(PlanError)
    expect(() => RestartPolicy.failureRate(-1, "1 minute")).toThrow("maxFailures must be an integer of at least 0, got -1")
    expect(() => RestartPolicy.failureRate(1, 0)).toThrow("interval must be longer than 0")
  })
})

describe("an embedded job's restarts", () => {
  /** A job that fails 3 times, 300 ms apart, then completes. */
  const failingThrice = () => {
    let next = Date.now() + 300
    let left = 3
    return Pipeline.from(Sources.generator({ make: (seq) => seq, count: 16_000, itemsPerSecond: 10_000 })).pipe(
      Stage.map((seq) => {
        if (left > 0 && Date.now() >= next) {
          left--
          next = Date.now() + 300
          throw new Error("injected failure")
        }
        return seq
      }),
      Stage.writeTo(Sinks.collect())
    )
  }
  const run = (restartPolicy: RestartPolicy.RestartPolicy) =>
    Effect.runPromise(Effect.exit(Tributary.run(failingThrice(), { processingGuarantee: "exactly-once", snapshotInterval: "50 millis", restartPolicy })))

  it("3 failures further apart than the interval of a 2-failure policy: the job completes", async () => {
    expect((await run(RestartPolicy.failureRate(2, "100 millis")))._tag).toBe("Success")
  })

  it("restarts back off: the first at once, the second after the policy's delay, the third after twice that", async () => {
    let failures = 0
    const failing = Pipeline.from(Sources.fromIterable(Array.from({ length: 100 }, (_, i) => i))).pipe(
      Stage.map((i) => {
        if (i === 50 && failures < 4) {
          failures++
          throw new Error("injected failure")
        }
        return i
      }),
      Stage.writeTo(Sinks.collect())
    )
    const job = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(failing, {
        processingGuarantee: "exactly-once",
        snapshotInterval: "1 hour",
        restartPolicy: RestartPolicy.failureRate(5, "1 minute", { delay: "300 millis", maxDelay: "1 minute" })
      })
      yield* job.join
      return yield* job.metrics
    })))
    const times = job.exceptions.map((e) => e.time)
    // Each failure is recorded as it happens, the wait before its restart after.
    expect(job.restarts).toBe(4)
    expect(times[1]! - times[0]!).toBeLessThan(300)
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(300)
    expect(times[3]! - times[2]!).toBeGreaterThanOrEqual(600)
  })

  it("an error marked Unrecoverable, or wrapping one, fails the job at once, without a restart", async () => {
    class Refused extends Data.TaggedError("Refused")<{}> {
      readonly [Unrecoverable] = true
    }
    const outcome = (pipeline: Pipeline.Pipeline<unknown, never>) =>
      Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const job = yield* Tributary.submit(pipeline, { processingGuarantee: "exactly-once", restartPolicy: RestartPolicy.failureRate(5, "1 minute") })
        const error = yield* Effect.flip(job.join)
        return { error, restarts: (yield* job.metrics).restarts }
      })))
    const input = () => Pipeline.from(Sources.fromIterable([1, 2, 3]))
    // The user's own typed error, as it is.
    const typed = await outcome(input().pipe(Stage.mapEffect(() => Effect.fail(new Refused())), Stage.writeTo(Sinks.collect())))
    expect(typed).toMatchObject({ error: { _tag: "Refused" }, restarts: 0 })
    // Thrown in a stage: wrapped in a StageError, still unrecoverable.
    const thrown = await outcome(input().pipe(Stage.map((): number => { throw new Refused() }), Stage.writeTo(Sinks.collect())))
    expect(thrown).toMatchObject({ error: { _tag: "StageError" }, restarts: 0 })
    // Any other error restarts the job under its policy.
    const other = await outcome(input().pipe(Stage.map((): number => { throw new Error("again") }), Stage.writeTo(Sinks.collect())))
    expect(other.restarts).toBe(5)
  })

  it("3 failures within it: the job fails with the third", async () => {
    const exit = await run(RestartPolicy.failureRate(2, "1 minute"))
    expect(exit._tag).toBe("Failure")
    if (exit._tag === "Failure") expect(String(exit.cause)).toContain("injected failure")
  })
})
