/**
 * Event time per split: behind a source of splits, each split has its own
 * watermark, an instance's is the minimum over its splits, and a split idle
 * for the idle timeout drops out until data comes.
 */
import { type Duration, Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, Sinks, Splits, Stage, Tributary, Window } from "../core/src/index.ts"

/** An unbounded source of splits read in turn; each split answers its batches one per pull, then ends (or waits forever). */
const splitSource = (batches: Record<string, ReadonlyArray<ReadonlyArray<number>> | (() => ReadonlyArray<number>)>) =>
  Splits.make({
    name: "splits",
    bounded: false,
    enumerate: () => Effect.succeed(Object.keys(batches).map((id) => ({ id }))),
    open: (split) =>
      Effect.sync(() => {
        const own = batches[split.id]!
        let next = 0
        return {
          position: () => next,
          pull: Effect.sync(() => (typeof own === "function" ? own() : next < own.length ? own[next++]! : undefined))
        }
      })
  })

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

describe("watermarks per split", () => {
  it("a split far ahead does not make another one's events late: every event is counted in its window", async () => {
    const out = Sinks.collect<Stage.WindowResult<unknown, number>>()
    // Read in turn: a's first batch is far ahead of b's.
    const source = splitSource({ a: [range(1000, 1500), range(1500, 2000)], b: [range(0, 250), range(250, 500)] })
    const metrics = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(source).pipe(
        Stage.withTimestamps((t: number) => t, { allowedLag: 100 }),
        Stage.window(Window.tumbling(1000)),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(out)
      ))
      yield* job.join
      return yield* job.metrics
    })))
    expect(metrics.instances.reduce((n, m) => n + m.lateEvents, 0)).toBe(0)
    expect(out.items.map((r) => [r.start, r.value])).toEqual([[0, 500], [1000, 1000]])
  })

  /**
   * How many 100 ms windows close within 3 s while the job runs over `busy` (events at processing
   * time since the start) beside `other`.
   */
  const windowsClosedBeside = (other: ReadonlyArray<ReadonlyArray<number>> | (() => ReadonlyArray<number>), idleTimeout?: Duration.Input) => {
    const out = Sinks.collect<Stage.WindowResult<unknown, number>>()
    const started = Date.now()
    const source = splitSource({ busy: () => [Date.now() - started], other })
    return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(source).pipe(
        Stage.withTimestamps((t: number) => t, { allowedLag: 0, idleTimeout }),
        Stage.window(Window.tumbling(100)),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(out)
      ))
      for (let waited = 0; out.items.length < 3 && waited < 3000; waited += 10) yield* Effect.sleep(10)
      yield* job.cancel
      return out.items.length
    })))
  }

  it("a split without data for the idle timeout drops out: windows close while it stays quiet", async () => {
    expect(await windowsClosedBeside(() => [], "50 millis")).toBeGreaterThanOrEqual(3)
  })

  it("a split that ended drops out: it does not hold the watermark back", async () => {
    expect(await windowsClosedBeside([[0]])).toBeGreaterThanOrEqual(3)
  })
})
