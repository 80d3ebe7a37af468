/** Stop with drain (Flink's `stop --drain`): the sources stop, every open window closes, the sinks commit, the job completes. */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, Platform, Sinks, Sources, Stage, Tributary, Window } from "../core/src/index.ts"

/** An unbounded stream of events one millisecond of event time apart, all in the first window of an hour. */
const events = () =>
  Pipeline.from(Sources.generator({ make: (seq) => ({ t: seq }), itemsPerSecond: 5000 })).pipe(
    Stage.withTimestamps((e) => e.t, { allowedLag: 0 }),
    Stage.window(Window.tumbling(3_600_000)),
    Stage.aggregate(Aggregate.counting())
  )

describe("stop with drain", () => {
  it("an unbounded job's open tumbling window is in the sink when it stops with drain, and the job completes", async () => {
    const out = Sinks.collect<Stage.WindowResult<undefined, number>>()
    const { result, status, summary } = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(events().pipe(Stage.writeTo(out)))
      yield* Effect.sleep(200)
      // Nothing closed the window yet: its end is an hour of event time away.
      const before = out.items.length
      yield* job.stop({ drain: true })
      return { result: [before, out.items], status: yield* job.status, summary: yield* job.summary }
    })))
    const [before, items] = result as [number, ReadonlyArray<Stage.WindowResult<undefined, number>>]
    expect(before).toBe(0)
    expect(status).toBe("completed")
    expect(items).toHaveLength(1)
    expect(items[0]!.start).toBe(0)
    // The window counts every event the source read before it stopped.
    expect(items[0]!.value).toBe(summary.recordsRead)
    expect(items[0]!.value).toBeGreaterThan(0)
  })

  it("exactly-once: the final transaction of a two-phase-commit sink is committed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-drain-"))
    try {
      await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const job = yield* Tributary.submit(events().pipe(Stage.writeTo(Sinks.directory(dir))), {
          processingGuarantee: "exactly-once",
          snapshotInterval: "50 millis"
        })
        yield* Effect.sleep(300)
        yield* job.stop()
      })).pipe(Effect.provide(Platform.layer)))
      const lines = fs.readdirSync(dir).filter((f) => !f.startsWith(".")).flatMap((f) =>
        fs.readFileSync(path.join(dir, f), "utf8").split("\n").filter((l) => l.length > 0))
      expect(lines).toHaveLength(1)
      expect(JSON.parse(lines[0]!)).toMatchObject({ start: 0, end: 3_600_000 })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("only a running job stops with drain", async () => {
    const error = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(Sources.fromIterable([1])).pipe(Stage.writeTo(Sinks.collect())))
      yield* job.join
      return yield* Effect.flip(job.stop({ drain: true }))
    })))
    expect(error).toMatchObject({ _tag: "JobStateError" })
  })
})
