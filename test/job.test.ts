import { Data, Effect, Exit, Fiber } from "effect"
import { describe, expect, it } from "vitest"
import {
  Aggregate,
  failedStage,
  JobCancelledError,
  PlanError,
  Pipeline,
  Sink,
  SinkError,
  Sinks,
  Sources,
  Stage,
  StageError,
  Tributary
} from "../core/src/index.ts"
import { failureOf, runJob } from "./helpers.ts"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

describe("failures", () => {
  it("a throwing map fails the job with the stage name and the record", async () => {
    const error = await failureOf(
      Pipeline.from(Sources.fromIterable(range(100))).pipe(
        Stage.map((x) => x + 1),
        Stage.withName("parse"),
        Stage.map((x) => {
          if (x === 42) throw new Error("no 42 please")
          return x
        }),
        Stage.withName("validate"),
        Stage.writeTo(Sinks.collect())
      ),
      { parallelism: 2 }
    )
    expect(error).toBeInstanceOf(StageError)
    const e = error as StageError
    expect(e.stage).toBe("validate")
    expect(e.record).toBe(42)
    expect(e.message).toContain("validate")
    expect(e.message).toContain("no 42 please")
  })

  class RateNotFound extends Data.TaggedError("RateNotFound")<{ readonly currency: string }> {}
  const trades = Pipeline.from(Sources.fromIterable([{ id: 1, currency: "USD" }, { id: 2, currency: "EUR" }]))

  it("a stage's own typed error fails the job as it is, with the stage and record beside it", async () => {
    const job = Tributary.run(
      trades.pipe(
        Stage.mapEffect((t) => (t.currency === "EUR" ? Effect.fail(new RateNotFound({ currency: t.currency })) : Effect.succeed(t))),
        Stage.withName("convert"),
        Stage.writeTo(Sinks.collect())
      )
    )
    expect(await Effect.runPromise(Effect.catchTag(job, "RateNotFound", (e) => Effect.succeed(e.currency)))).toBe("EUR")
    const exit = await Effect.runPromise(Effect.exit(job))
    expect(Exit.isFailure(exit) && failedStage(exit.cause)).toEqual({ stage: "convert", record: { id: 2, currency: "EUR" } })
    const resource = Effect.acquireRelease(Effect.fail(new RateNotFound({ currency: "GBP" })), () => Effect.void)
    const acquired = await Effect.runPromise(Effect.exit(Tributary.run(
      trades.pipe(Stage.mapUsingService(resource, (_, t) => t), Stage.withName("rates"), Stage.writeTo(Sinks.collect()))
    )))
    expect(Exit.isFailure(acquired) && failedStage(acquired.cause)).toEqual({ stage: "rates", record: undefined })
  })

  it("a thrown tagged error's message shows its tag and fields", async () => {
    const error = await failureOf(trades.pipe(
      Stage.map((t) => {
        if (t.currency === "EUR") throw new RateNotFound({ currency: t.currency })
        return t
      }),
      Stage.withName("convert"),
      Stage.writeTo(Sinks.collect())
    ))
    expect((error as StageError).message).toBe(`stage "convert" failed on record {"id":2,"currency":"EUR"}: RateNotFound {"currency":"EUR"}`)
  })

  it("a throwing key function and a throwing aggregate name their stage", async () => {
    const byKey = await failureOf(
      Pipeline.from(Sources.fromIterable([{ id: "a" }, { id: "b" }, null])).pipe(
        Stage.groupingKey((r) => r!.id),
        Stage.distinct,
        Stage.withName("dedupe"),
        Stage.writeTo(Sinks.collect())
      )
    )
    expect(byKey).toBeInstanceOf(StageError)
    expect((byKey as StageError).stage).toBe("dedupe")
    expect((byKey as StageError).record).toBe(null)
    const byOp = await failureOf(
      Pipeline.from(Sources.fromIterable(["1", "2", "x"])).pipe(
        Stage.aggregate({
          name: "parseSum",
          create: () => 0,
          accumulate: (acc: number, s: string) => {
            if (Number.isNaN(Number(s))) throw new Error(`not a number: ${s}`)
            return acc + Number(s)
          },
          combine: (a: number, b: number) => a + b,
          export: (a: number) => a
        }),
        Stage.withName("total"),
        Stage.writeTo(Sinks.collect())
      )
    )
    expect((byOp as StageError).stage).toBe("total")
    expect((byOp as StageError).record).toBe("x")
  })

  it("a failing sink fails the job with a SinkError naming the sink", async () => {
    const broken = Sink.make<number>({
      name: "broken",
      open: () => Effect.succeed({ write: () => Effect.fail(new Error("disk full")) })
    })
    const error = await failureOf(Pipeline.from(Sources.fromIterable(range(10))).pipe(Stage.writeTo(broken)))
    expect(error).toBeInstanceOf(SinkError)
    expect((error as SinkError).sink).toBe("broken")
    expect((error as SinkError).message).toContain("disk full")
  })

  it("a failure releases the resources of every instance", async () => {
    let open = 0
    const resource = Effect.acquireRelease(Effect.sync(() => ++open), () => Effect.sync(() => open--))
    const error = await failureOf(
      Pipeline.from(Sources.generator({ make: (i) => i })).pipe(
        Stage.mapUsingService(resource, (_, x: number) => x),
        Stage.map((x) => {
          if (x === 5000) throw new Error("boom")
          return x
        }),
        Stage.writeTo(Sinks.collect())
      ),
      { parallelism: 2 }
    )
    expect(error).toBeInstanceOf(StageError)
    expect(open).toBe(0)
  })

  it("bad options and an empty pipeline are plan errors", async () => {
    const p = Pipeline.from(Sources.fromIterable([1])).pipe(Stage.writeTo(Sinks.collect()))
    expect(await failureOf(p, { parallelism: 0 })).toBeInstanceOf(PlanError)
    expect(await failureOf(p, { batchSize: 1.5 })).toBeInstanceOf(PlanError)
    expect(await failureOf(Pipeline.make())).toBeInstanceOf(PlanError)
    const restarts = await failureOf(p, { processingGuarantee: "at-least-once", maxRestarts: -1 })
    expect(restarts).toBeInstanceOf(PlanError)
    expect((restarts as PlanError).message).toContain("maxRestarts must be an integer of at least 0, got -1")
    await runJob(p, { maxRestarts: 0 })
  })

  it("a generator rate that would never emit, or a fractional count, is refused where the source is made", () => {
    for (const itemsPerSecond of [0, -10, NaN]) {
      expect(() => Sources.generator({ make: (i) => i, itemsPerSecond, name: "ticks" }))
        .toThrow(new PlanError({ reason: `source "ticks": itemsPerSecond must be a positive number, got ${itemsPerSecond}` }))
    }
    expect(() => Sources.generator({ make: (i) => i, count: 1.5 })).toThrow(/source "generator": count must be a whole number, got 1.5/)
    expect(Sources.generator({ make: (i) => i, count: 0 }).bounded).toBe(true)
    expect(Sources.generator({ make: (i) => i, itemsPerSecond: 10 }).bounded).toBe(false)
  })
})

describe("job handle", () => {
  it("cancel stops an unbounded job and releases its resources", async () => {
    let open = 0
    const resource = Effect.acquireRelease(Effect.sync(() => ++open), () => Effect.sync(() => open--))
    const out = Sinks.collect<number>()
    const outcome = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(Sources.generator({ make: (i) => i, itemsPerSecond: 20_000 })).pipe(
          Stage.mapUsingService(resource, (_, x: number) => x),
          Stage.writeTo(out)
        ),
        { parallelism: 2 }
      )
      while (out.items.length < 100) yield* Effect.sleep(5)
      const running = yield* job.status
      const openWhileRunning = open
      yield* job.cancel
      const joined = yield* Effect.flip(job.join)
      return { running, openWhileRunning, status: yield* job.status, joined }
    })))
    expect(outcome.running).toBe("running")
    expect(outcome.openWhileRunning).toBe(2)
    expect(outcome.status).toBe("cancelled")
    expect(outcome.joined).toBeInstanceOf(JobCancelledError)
    expect(open).toBe(0)
  })

  it("a busy job whose stages emit nothing still lets the process's timers run", async () => {
    let ticks = 0
    let ticksAtFirstRecord: number | undefined
    const timer = setInterval(() => ticks++, 1)
    // Keyed state, then nothing out: the tasklets only ever hand each other batches.
    await runJob(
      Pipeline.from(Sources.generator({ make: (i) => i, count: 2_000_000 })).pipe(
        Stage.peek(() => void (ticksAtFirstRecord ??= ticks)),
        Stage.groupingKey((i) => i % 1000),
        Stage.rollingAggregate(Aggregate.counting()),
        Stage.filter(() => false),
        Stage.writeTo(Sinks.collect())
      )
    )
    const ticksDuringJob = ticks - ticksAtFirstRecord!
    clearInterval(timer)
    expect(ticksDuringJob).toBeGreaterThan(0)
  })

  it("metrics count records and batches per vertex instance", async () => {
    const metrics = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(Sources.fromIterable(range(1000))).pipe(
          Stage.filter((x) => x % 2 === 0),
          Stage.groupingKey((x) => x % 10),
          Stage.aggregate({ name: "n", create: () => 0, accumulate: (a: number) => a + 1, combine: (a: number, b: number) => a + b, export: (a: number) => a }),
          Stage.writeTo(Sinks.collect())
        ),
        { parallelism: 2, batchSize: 100 }
      )
      yield* job.join
      expect(yield* job.status).toBe("completed")
      return yield* job.metrics
    })))
    const sources = metrics.instances.filter((m) => m.vertex.startsWith("items"))
    expect(sources.length).toBe(2)
    expect(sources.reduce((n, m) => n + m.recordsIn, 0)).toBe(1000)
    expect(sources.reduce((n, m) => n + m.batchesIn, 0)).toBe(10)
    const combiners = metrics.instances.filter((m) => !m.vertex.startsWith("items"))
    expect(combiners.reduce((n, m) => n + m.recordsOut, 0)).toBe(5)
  })
})

describe("backpressure", () => {
  it("a slow sink keeps every queue within its bound while a fast source runs", async () => {
    const capacity = 3
    const batchSize = 64
    let written = 0
    const slow = Sink.make<number>({
      name: "slow",
      open: () => Effect.succeed({ write: (batch) => Effect.as(Effect.sleep(2), void (written += batch.length)) })
    })
    const result = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(Sources.generator({ make: (i) => i })).pipe(
          Stage.map((x) => x + 1),
          Stage.rebalance,
          Stage.map((x) => x * 2),
          Stage.writeTo(slow)
        ),
        { parallelism: 2, batchSize, queueCapacity: capacity }
      )
      const samples: Array<{ produced: number; written: number }> = []
      for (let i = 0; i < 20; i++) {
        yield* Effect.sleep(15)
        const m = yield* job.metrics
        const produced = m.instances.filter((x) => x.vertex.startsWith("generator")).reduce((n, x) => n + x.recordsIn, 0)
        samples.push({ produced, written })
        for (const inst of m.instances) for (const q of inst.queues) expect(q.highWater).toBeLessThanOrEqual(capacity)
      }
      yield* job.cancel
      return samples
    })))
    // What the source got ahead of the sink is bounded by the queues (2 producers × 2 consumers
    // × capacity batches) plus one batch in hand per tasklet, however long the job runs.
    const bound = (2 * 2 * capacity + 4) * batchSize
    for (const s of result) expect(s.produced - s.written).toBeLessThanOrEqual(bound)
    expect(result[result.length - 1]!.written).toBeGreaterThan(0)
  })
})

describe("run as an effect", () => {
  it("can be interrupted like any effect", async () => {
    const out = Sinks.collect<number>()
    await Effect.runPromise(Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        Tributary.run(Pipeline.from(Sources.generator({ make: (i) => i, itemsPerSecond: 1000 })).pipe(Stage.writeTo(out)))
      )
      yield* Effect.sleep(50)
      yield* Fiber.interrupt(fiber)
    }))
    expect(out.items.length).toBeGreaterThan(0)
  })

  it("runJob on bounded input completes", async () => {
    const out = Sinks.collect<number>()
    await runJob(Pipeline.from(Sources.generator({ make: (i) => i * i, count: 100 })).pipe(Stage.writeTo(out)), { parallelism: 3 })
    expect([...out.items].sort((a, b) => a - b)).toEqual(range(100).map((i) => i * i))
  })
})

describe("generator source", () => {
  it("hands each record its scheduled time at the configured rate", async () => {
    const out = Sinks.collect<readonly [number, number]>()
    const before = Date.now()
    await runJob(
      Pipeline.from(Sources.generator({ make: (seq, due) => [seq, due] as const, count: 200, itemsPerSecond: 2000 })).pipe(Stage.writeTo(out)),
      { parallelism: 2 }
    )
    const dues = [...out.items].sort((a, b) => a[0] - b[0])
    expect(dues.map(([seq]) => seq)).toEqual(range(200))
    // Two instances at 1000/s each: an instance's k-th record is due k ms after it started.
    for (const instance of [0, 1]) {
      const mine = dues.filter(([seq]) => seq % 2 === instance).map(([, due]) => due)
      expect(mine[0]).toBeGreaterThanOrEqual(before)
      for (let k = 1; k < mine.length; k++) expect(mine[k]! - mine[k - 1]!).toBeCloseTo(1, 6)
    }
  })
})
