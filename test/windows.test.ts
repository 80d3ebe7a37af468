import { Effect } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, PlanError, Sinks, Source, Sources, Stage, Tributary, Window } from "../core/src/index.ts"
import { failureOf, rng, runJob } from "./helpers.ts"

interface Ev {
  readonly key: string
  readonly t: number
  readonly x: number
}

type Result = Stage.WindowResult<string, number>
type Window = Pick<Result, "start" | "end" | "key">
const byWindow = (a: Window, b: Window) => a.end - b.end || a.start - b.start || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
const finalOf = (items: ReadonlyArray<Result>) => items.filter((r) => !r.isEarly).map(({ start, end, key, value }) => ({ start, end, key, value })).sort(byWindow)

/** Windowed sums (or another `value` of a window's events) computed with plain loops, independently of the engine. */
const expectedSliding = (
  events: ReadonlyArray<Ev>,
  size: number,
  step: number,
  value = (inside: ReadonlyArray<Ev>) => inside.reduce((s, e) => s + e.x, 0)
) => {
  const out: Array<{ start: number; end: number; key: string; value: number }> = []
  const keys = [...new Set(events.map((e) => e.key))]
  const ends = new Set<number>()
  for (const e of events) for (let end = Math.floor(e.t / step) * step + step; end - size <= e.t; end += step) ends.add(end)
  for (const end of ends) {
    for (const key of keys) {
      const inside = events.filter((e) => e.key === key && e.t >= end - size && e.t < end)
      if (inside.length > 0) out.push({ start: end - size, end, key, value: value(inside) })
    }
  }
  return out.sort(byWindow)
}

const expectedSessions = (events: ReadonlyArray<Ev>, gap: number) => {
  const out: Array<{ start: number; end: number; key: string; value: number }> = []
  for (const key of new Set(events.map((e) => e.key))) {
    const times = events.filter((e) => e.key === key).sort((a, b) => a.t - b.t)
    let current: { start: number; end: number; key: string; value: number } | undefined
    for (const e of times) {
      if (current && e.t < current.end) {
        current.end = Math.max(current.end, e.t + gap)
        current.value += e.x
      } else {
        if (current) out.push(current)
        current = { start: e.t, end: e.t + gap, key, value: e.x }
      }
    }
    if (current) out.push(current)
  }
  return out.sort(byWindow)
}

/** Shuffles events so none is behind the highest time seen before it by `lag` or more. */
const shuffleWithinLag = (events: ReadonlyArray<Ev>, lag: number, seed: number) => {
  const random = rng(seed)
  return events.map((e) => ({ e, at: e.t + random() * lag })).sort((a, b) => a.at - b.at).map((x) => x.e)
}

const randomEvents = (seed: number, n: number): Array<Ev> => {
  const random = rng(seed)
  return Array.from({ length: n }, (_, i) => ({
    key: `k${Math.floor(random() * 4)}`,
    t: Math.floor(random() * 2000),
    x: i % 7
  })).sort((a, b) => a.t - b.t)
}

const windowedSum = (events: ReadonlyArray<Ev>, definition: Window.WindowDefinition, lag: number) => {
  const out = Sinks.collect<Result>()
  const pipeline = Pipeline.from(Sources.fromIterable(events)).pipe(
    Stage.withTimestamps((e) => e.t, { allowedLag: lag }),
    Stage.groupingKey((e) => e.key),
    Stage.window(definition),
    Stage.aggregate(Aggregate.summing((e: Ev) => e.x)),
    Stage.writeTo(out)
  )
  return { out, pipeline }
}

describe("windows on ordered events", () => {
  it.each([1, 3])("tumbling, sliding and session windows equal a plain computation (parallelism %i)", async (parallelism) => {
    const events = randomEvents(7, 400)
    const cases = [
      { definition: Window.tumbling(100), expected: expectedSliding(events, 100, 100) },
      { definition: Window.sliding(200, 50), expected: expectedSliding(events, 200, 50) },
      { definition: Window.session(30), expected: expectedSessions(events, 30) }
    ]
    for (const { definition, expected } of cases) {
      const { out, pipeline } = windowedSum(events, definition, 0)
      await runJob(pipeline, { parallelism, batchSize: 16 })
      expect(finalOf(out.items)).toEqual(expected)
    }
  })

  it("a window without a key aggregates every event of the window", async () => {
    const out = Sinks.collect<Stage.WindowResult<undefined, number>>()
    await runJob(
      Pipeline.from(Sources.fromIterable([1, 5, 12, 18, 25])).pipe(
        Stage.withTimestamps((t) => t, { allowedLag: 0 }),
        Stage.window(Window.tumbling(10)),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(out)
      ),
      { parallelism: 2 }
    )
    expect(out.items.map((r) => [r.start, r.end, r.key, r.value])).toEqual([[0, 10, undefined, 2], [10, 20, undefined, 2], [20, 30, undefined, 1]])
  })

  it("rejects a window before timestamps, and invalid definitions", async () => {
    const flipped = await Effect.runPromise(Effect.flip(Tributary.run(
      // @ts-expect-error a compile error where the types know it; the planner's check is for untyped callers
      Pipeline.from(Sources.fromIterable([1])).pipe(Stage.window(Window.tumbling(10)), Stage.aggregate(Aggregate.counting()), Stage.writeTo(Sinks.collect()))
    )))
    expect((flipped as Error).message).toContain("withTimestamps")
    expect(() => Window.sliding(100, 30)).toThrow(/multiple of its step/)
    expect(() => Window.tumbling(0)).toThrow(PlanError)
    // A window is not silently ignored by a stage that does not take one.
    const windowed = Pipeline.from(Sources.fromIterable([1, 1500, 2500])).pipe(
      Stage.withTimestamps((t) => t, { allowedLag: 0 }),
      Stage.window(Window.tumbling("1 second"))
    )
    const pipelines = [
      windowed.pipe(Stage.rollingAggregate(Aggregate.counting()), Stage.writeTo(Sinks.collect())),
      windowed.pipe(Stage.distinct, Stage.writeTo(Sinks.collect()))
    ]
    for (const pipeline of pipelines) {
      const error = await failureOf(pipeline)
      expect(error).toBeInstanceOf(PlanError)
      expect((error as PlanError).message).toMatch(/does not take a window/)
    }
    expect(() => Window.sliding("10 seconds", "3 seconds")).toThrow(PlanError)
    expect(() => Window.sliding("10 seconds", "3 seconds")).toThrow(/sliding window size 10000 ms is not a multiple of its step 3000 ms/)
  })
})

describe("reordered events", () => {
  const definitions = {
    tumbling: Window.tumbling(100),
    sliding: Window.sliding(200, 50),
    session: Window.session(40)
  }
  for (const [name, definition] of Object.entries(definitions)) {
    it(`${name}: events shuffled within the allowed lag give exactly the sorted result`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 50 }), async (seed, parallelism, batchSize) => {
          const lag = 150
          const sorted = randomEvents(seed, 300)
          const shuffled = shuffleWithinLag(sorted, lag, seed + 1)
          const a = windowedSum(sorted, definition, lag)
          const b = windowedSum(shuffled, definition, lag)
          await runJob(a.pipeline, { parallelism, batchSize })
          await runJob(b.pipeline, { parallelism, batchSize })
          expect(finalOf(b.out.items)).toEqual(finalOf(a.out.items))
          expect(finalOf(a.out.items).length).toBeGreaterThan(0)
        }),
        { numRuns: 12 }
      )
    })
  }
})

describe("reordered events, one and two stages", () => {
  it("sliding windows with and without a deduct, keys coming and going, reordered within the lag: equal a plain computation", async () => {
    const sum = Aggregate.summing((e: Ev) => e.x)
    // No deduct: the window combines its frames; its accumulator starts undefined.
    const max = Aggregate.maxBy((a: Ev, b: Ev) => a.x - b.x)
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 50 }), async (seed, parallelism, batchSize) => {
        const lag = 150
        // 12 keys over 40 frames of 50 ms, ~8 events a frame: most keys skip most frames.
        const random = rng(seed)
        const sorted = Array.from({ length: 300 }, (_, i) => ({ key: `k${Math.floor(random() * 12)}`, t: Math.floor(random() * 2000), x: i % 11 }))
          .sort((a, b) => a.t - b.t)
        const shuffled = shuffleWithinLag(sorted, lag, seed + 1)
        for (const [op, value] of [[sum, (e: unknown) => e], [max, (e: unknown) => (e as Ev).x]] as const) {
          const out = Sinks.collect<Stage.WindowResult<string, unknown>>()
          // A generator source runs `parallelism` instances: the window runs in two stages then.
          const pipeline = Pipeline.from(Sources.generator({ make: (seq) => shuffled[seq]!, count: shuffled.length })).pipe(
            Stage.withTimestamps((e) => e.t, { allowedLag: lag }),
            Stage.groupingKey((e) => e.key),
            Stage.window(Window.sliding(200, 50)),
            Stage.aggregate(op as Aggregate.AggregateOp<Ev, unknown, unknown>),
            Stage.writeTo(out)
          )
          await runJob(pipeline, { parallelism, batchSize })
          const results = out.items.map((r) => ({ ...r, value: value(r.value) as number }))
          const expected = expectedSliding(sorted, 200, 50, op === sum ? undefined : (inside) => Math.max(...inside.map((e) => e.x)))
          expect(finalOf(results)).toEqual(expected)
        }
      }),
      { numRuns: 12 }
    )
  })
})

describe("watermarks", () => {
  it("late events are dropped and counted, or sent to a side output", async () => {
    const events = [0, 10, 20, 200, 5, 210, 300].map((t) => ({ key: "a", t, x: 1 }))
    const results = Sinks.collect<Result>()
    const late = Sinks.collect<Ev>()
    const metrics = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.make(
        Pipeline.from(Sources.fromIterable(events)).pipe(
          Stage.withTimestamps((e) => e.t, { allowedLag: 50 }),
          Stage.groupingKey((e) => e.key),
          Stage.window(Window.tumbling(100), { lateEvents: late }),
          Stage.aggregate(Aggregate.counting()),
          Stage.writeTo(results)
        )
      ))
      yield* job.join
      return yield* job.metrics
    })))
    // 5 arrives after the watermark reached 200 - 50 = 150: window [0, 100) was already closed.
    expect(late.items).toEqual([{ key: "a", t: 5, x: 1 }])
    expect(metrics.instances.reduce((n, m) => n + m.lateEvents, 0)).toBe(1)
    expect(finalOf(results.items).map((r) => [r.start, r.value])).toEqual([[0, 3], [200, 2], [300, 1]])
  })

  it("coalesce over merged inputs, and an idle input stops holding them back after its idle timeout", async () => {
    // An input that never has data: without the idle timeout no window could close.
    const silent = Source.make<Ev>({ name: "silent", bounded: false, open: () => Effect.succeed({ pull: Effect.as(Effect.sleep(5), []) }) })
    const busy = Sources.generator({ make: (seq) => ({ key: "a", t: seq, x: 1 }), itemsPerSecond: 2000 })
    const out = Sinks.collect<Stage.WindowResult<undefined, number>>()
    const watermarks = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(busy).pipe(
          Stage.merge(Pipeline.from(silent)),
          Stage.withTimestamps((e) => e.t, { allowedLag: 10, idleTimeout: 100 }),
          Stage.window(Window.tumbling(50)),
          Stage.aggregate(Aggregate.counting()),
          Stage.writeTo(out)
        ),
        { parallelism: 2 }
      )
      while (out.items.length < 3) yield* Effect.sleep(10)
      const m = yield* job.metrics
      yield* job.cancel
      return m.instances.map((i) => i.watermark)
    })))
    expect(out.items.slice(0, 3).map((r) => [r.start, r.value])).toEqual([[0, 50], [50, 50], [100, 50]])
    expect(Math.max(...watermarks)).toBeGreaterThanOrEqual(150)
  })

  it("a window waits for the slowest of several timestamped inputs", async () => {
    const fast = Sources.fromIterable([0, 10, 110, 210, 310].map((t) => ({ key: "f", t, x: 1 })))
    const slowEvents = [5, 15, 115].map((t) => ({ key: "s", t, x: 1 }))
    const out = Sinks.collect<Result>()
    await runJob(
      Pipeline.from(fast).pipe(
        Stage.withTimestamps((e) => e.t, { allowedLag: 0 }),
        Stage.merge(Pipeline.from(Sources.fromIterable(slowEvents)).pipe(Stage.withTimestamps((e) => e.t, { allowedLag: 0 }))),
        Stage.groupingKey((e) => e.key),
        Stage.window(Window.tumbling(100)),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(out)
      ),
      { parallelism: 2 }
    )
    // No event of the slow input is late although the fast one ran ahead.
    expect(finalOf(out.items).map((r) => [r.key, r.start, r.value])).toEqual([
      ["f", 0, 2], ["s", 0, 2], ["f", 100, 1], ["s", 100, 1], ["f", 200, 1], ["f", 300, 1]
    ])
  })
})

describe("early results and long runs", () => {
  it("early results arrive before the window closes and the final result is exact", async () => {
    const out = Sinks.collect<Result>()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(Sources.generator({ make: (seq) => ({ key: "a", t: seq * 2, x: 1 }), itemsPerSecond: 1000 })).pipe(
          Stage.withTimestamps((e) => e.t, { allowedLag: 0 }),
          Stage.groupingKey((e) => e.key),
          Stage.window(Window.earlyResults(Window.tumbling(400), 40)),
          Stage.aggregate(Aggregate.counting()),
          Stage.writeTo(out)
        )
      )
      while (!out.items.some((r) => !r.isEarly && r.start === 400)) yield* Effect.sleep(10)
      yield* job.cancel
    })))
    const first = out.items.findIndex((r) => !r.isEarly && r.start === 0)
    const early = out.items.slice(0, first).filter((r) => r.isEarly && r.start === 0)
    expect(early.length).toBeGreaterThan(1)
    // Running counts: growing, partial before the window has all its events.
    expect(early.every((r) => r.value > 0 && r.value <= 200)).toBe(true)
    expect(early.some((r) => r.value < 200)).toBe(true)
    for (let i = 1; i < early.length; i++) expect(early[i]!.value).toBeGreaterThanOrEqual(early[i - 1]!.value)
    expect(out.items[first]!.value).toBe(200)
    expect(out.items.find((r) => !r.isEarly && r.start === 400)!.value).toBe(200)
  })

  it("a fixed-rate stream gives one result per window per key, windows contiguous", async () => {
    const out = Sinks.collect<Result>()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(Sources.generator({ make: (seq) => ({ key: `k${seq % 5}`, t: seq, x: 1 }), itemsPerSecond: 5000 })).pipe(
          Stage.withTimestamps((e) => e.t, { allowedLag: 20 }),
          Stage.groupingKey((e) => e.key),
          Stage.window(Window.sliding(200, 100)),
          Stage.aggregate(Aggregate.counting()),
          Stage.writeTo(out)
        ),
        { parallelism: 2 }
      )
      yield* Effect.sleep("1500 millis")
      yield* job.cancel
    })))
    const results = finalOf(out.items)
    const ends = [...new Set(results.map((r) => r.end))].sort((a, b) => a - b)
    expect(ends.length).toBeGreaterThan(20)
    ends.forEach((end, i) => expect(end).toBe(100 + i * 100))
    for (const end of ends) {
      const inWindow = results.filter((r) => r.end === end)
      expect(inWindow.map((r) => r.key).sort()).toEqual(["k0", "k1", "k2", "k3", "k4"])
      expect(inWindow.every((r) => r.value === (end === 100 ? 20 : 40))).toBe(true)
    }
  })
})

describe("keyed state in event time", () => {
  it("mapStateful evicts a key's state once the watermark passes its ttl", async () => {
    const out = Sinks.collect<string>()
    const events = [0, 10, 20, 500, 510].map((t) => ({ key: t < 100 ? "old" : "new", t, x: 1 }))
    await runJob(
      Pipeline.from(Sources.fromIterable(events)).pipe(
        Stage.withTimestamps((e) => e.t, { allowedLag: 0 }),
        Stage.groupingKey((e) => e.key),
        Stage.mapStateful(() => ({ n: 0 }), (s) => {
          s.n++
          return undefined
        }, { ttl: 100, onEvict: (s, key, time) => `${key} evicted at ${time} after ${s.n}` }),
        Stage.writeTo(out)
      ),
      { batchSize: 1 }
    )
    expect(out.items).toEqual(["old evicted at 500 after 3"])
  })

  it("rollingAggregate with a ttl starts a key over once it was idle that long in event time", async () => {
    const out = Sinks.collect<string>()
    // "a" is idle from 20 to 300 (> ttl 100): its count restarts; "b" keeps going (gaps < 100).
    const events = [[0, "a"], [10, "b"], [20, "a"], [90, "b"], [180, "b"], [250, "b"], [300, "a"], [310, "a"]] as const
    await runJob(
      Pipeline.from(Sources.fromIterable(events.map(([t, key]) => ({ t, key })))).pipe(
        Stage.withTimestamps((e) => e.t, { allowedLag: 0 }),
        Stage.groupingKey((e) => e.key),
        Stage.rollingAggregate(Aggregate.counting(), { ttl: 100 }),
        Stage.map((r) => `${r.key}${r.value}`),
        Stage.writeTo(out)
      ),
      { batchSize: 1 }
    )
    expect(out.items.filter((s) => s.startsWith("a"))).toEqual(["a1", "a2", "a1", "a2"])
    expect(out.items.filter((s) => s.startsWith("b"))).toEqual(["b1", "b2", "b3", "b4"])
  })

  it("a ttl without timestamps is a plan error", async () => {
    const error = await failureOf(
      Pipeline.from(Sources.fromIterable([1, 2])).pipe(
        Stage.groupingKey((n) => n),
        Stage.rollingAggregate(Aggregate.counting(), { ttl: "1 second" }),
        Stage.writeTo(Sinks.collect())
      )
    )
    expect(error).toBeInstanceOf(PlanError)
  })

  it("mapStateful evicts a key's state once the watermark reaches the time the state names", async () => {
    const out = Sinks.collect<string>()
    // Each key's deadline is set by its first record; later records count until then.
    const events = [{ key: "a", t: 0, x: 150 }, { key: "b", t: 10, x: 400 }, { key: "a", t: 100, x: 0 }, { key: "b", t: 300, x: 0 }, { key: "c", t: 500, x: 1000 }]
    await runJob(
      Pipeline.from(Sources.fromIterable(events)).pipe(
        Stage.withTimestamps((e) => e.t, { allowedLag: 0 }),
        Stage.groupingKey((e) => e.key),
        Stage.mapStateful(() => ({ deadline: Infinity, n: 0 }), (s, e) => {
          if (s.n++ === 0) s.deadline = e.x
          return undefined
        }, { expireAt: (s) => s.deadline, onEvict: (s, key, time) => `${key} evicted at ${time} after ${s.n}` }),
        Stage.writeTo(out)
      ),
      { batchSize: 1 }
    )
    expect(out.items).toEqual(["a evicted at 300 after 2", "b evicted at 500 after 2"])
  })

  it("a window over window results on the same grid holds them in the window of the same end", async () => {
    const out = Sinks.collect<Stage.WindowResult<number, number>>()
    const events = Array.from({ length: 300 }, (_, i) => ({ key: `k${i % 3}`, t: i * 10, x: 1 }))
    await runJob(
      Pipeline.from(Sources.fromIterable(events)).pipe(
        Stage.withTimestamps((e) => e.t, { allowedLag: 0 }),
        Stage.groupingKey((e) => e.key),
        Stage.window(Window.sliding(400, 200)),
        Stage.aggregate(Aggregate.counting()),
        Stage.groupingKey((r) => r.end),
        Stage.window(Window.tumbling(200)),
        Stage.aggregate(Aggregate.summing((r: Result) => r.value)),
        Stage.writeTo(out)
      ),
      { parallelism: 2 }
    )
    // Timed at its last instant (end - 1), a result of window [s, e) falls in the outer window ending at e.
    const results = [...out.items].sort((a, b) => a.end - b.end)
    expect(results.map((r) => [r.key, r.end])).toEqual(Array.from({ length: 16 }, (_, i) => [200 * (i + 1), 200 * (i + 1)]))
    expect(results.map((r) => r.value)).toEqual([20, ...Array.from({ length: 14 }, () => 40), 20])
  })

  it("withNativeTimestamps uses the time the source's records carry", async () => {
    const out = Sinks.collect<Result>()
    await runJob(
      Pipeline.from(Sources.generator({ make: (seq) => ({ key: "a", t: seq * 10, x: 1 }), count: 25, eventTime: (e) => e.t })).pipe(
        Stage.withNativeTimestamps({ allowedLag: 0 }),
        Stage.groupingKey((e) => e.key),
        Stage.window(Window.tumbling(100)),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(out)
      )
    )
    expect(finalOf(out.items).map((r) => r.value)).toEqual([10, 10, 5])
  })
})
