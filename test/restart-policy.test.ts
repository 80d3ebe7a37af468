/** The failure-rate restart policy: its arithmetic, and an embedded job that follows it. */
import { Duration, Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as Registry from "../cluster/src/coordinator/Registry.ts"
import { PlanError, Pipeline, RestartPolicy, Sinks, Sources, Stage, Tributary } from "../core/src/index.ts"

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

  it("a cluster's registry keeps a policy as JSON, an unbounded interval as null", () => {
    for (const p of [policy, RestartPolicy.maxRestarts(4)]) {
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

  it("3 failures within it: the job fails with the third", async () => {
    const exit = await run(RestartPolicy.failureRate(2, "1 minute"))
    expect(exit._tag).toBe("Failure")
    if (exit._tag === "Failure") expect(String(exit.cause)).toContain("injected failure")
  })
})
