import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, Sinks, Sources, Stage, Window } from "../core/src/index.ts"
import type { Operator, Step } from "../core/src/operator/Operator.ts"
import { plan } from "../core/src/plan/Planner.ts"
import { partitionOf, stableHash } from "../core/src/plan/partition.ts"

const options = { parallelism: 4, partitionCount: 271 }

describe("planner", () => {
  it("fuses a source and its stateless chain and sink into one vertex", () => {
    const dag = plan(
      Pipeline.from(Sources.fromIterable([1, 2, 3])).pipe(
        Stage.map((x) => x + 1),
        Stage.filter((x) => x > 1),
        Stage.flatMap((x) => [x, x]),
        Stage.writeTo(Sinks.collect())
      ),
      options
    )
    expect(dag.vertices.length).toBe(1)
    expect(dag.edges.length).toBe(0)
    expect(dag.vertices[0]!.steps.length).toBe(1)
    expect(dag.vertices[0]!.name).toBe("items→map→filter→flatMap→collect")
  })

  it("plans a keyed aggregation in two stages around a partitioned edge", () => {
    const dag = plan(
      Pipeline.from(Sources.fromIterable(["a"])).pipe(
        Stage.map((s) => s.toUpperCase()),
        Stage.groupingKey((s) => s),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(Sinks.collect())
      ),
      options
    )
    expect(dag.vertices.map((v) => v.steps.map((s) => s.name))).toEqual([["map", "aggregate"], ["aggregate"]])
    expect(dag.edges.map((e) => e.routing._tag)).toEqual(["Partitioned"])
    expect(dag.vertices[1]!.parallelism).toBe(4)
  })

  it("combines a global aggregation on one instance", () => {
    const dag = plan(
      Pipeline.from(Sources.fromIterable([1])).pipe(Stage.aggregate(Aggregate.counting()), Stage.writeTo(Sinks.collect())),
      options
    )
    expect(dag.edges.map((e) => e.routing._tag)).toEqual(["AllToOne"])
    expect(dag.vertices[1]!.parallelism).toBe(1)
  })

  it("does not fuse past a stage whose output feeds several consumers", () => {
    const shared = Pipeline.from(Sources.fromIterable([1])).pipe(Stage.map((x) => x + 1))
    const dag = plan(
      Pipeline.make(
        shared.pipe(Stage.map((x) => x * 2), Stage.writeTo(Sinks.collect())),
        shared.pipe(Stage.writeTo(Sinks.collect()))
      ),
      options
    )
    expect(dag.vertices.length).toBe(3)
    expect(dag.edges.every((e) => e.routing._tag === "OneToOne" && e.from === 0)).toBe(true)
  })

  it("reads a source that feeds several branches once, in its own vertex", () => {
    const source = Pipeline.from(Sources.fromIterable([1, 2, 3]))
    const dag = plan(
      Pipeline.make(source.pipe(Stage.writeTo(Sinks.collect())), source.pipe(Stage.map((x) => x * 2), Stage.writeTo(Sinks.collect()))),
      options
    )
    expect(dag.vertices.map((v) => [v.name, v.source !== undefined])).toEqual([["items", true], ["collect", false], ["map→collect-2", false]])
    expect(dag.edges.map((e) => [e.from, e.to, e.routing._tag])).toEqual([[0, 1, "OneToOne"], [0, 2, "OneToOne"]])
  })

  it("broadcasts a join's side input and reads it first", () => {
    const dag = plan(
      Pipeline.from(Sources.fromIterable([1])).pipe(
        Stage.hashJoin(Pipeline.from(Sources.fromIterable([2])), { left: (x) => x, right: (y) => y }, (x, y) => [x, y]),
        Stage.writeTo(Sinks.collect())
      ),
      options
    )
    const side = dag.edges.find((e) => e.routing._tag === "Broadcast")!
    const main = dag.edges.find((e) => e.routing._tag === "OneToOne")!
    expect(side.priority).toBeLessThan(main.priority)
  })

  it("names stages uniquely and rejects two stages named alike", () => {
    const dag = plan(
      Pipeline.from(Sources.fromIterable([1])).pipe(Stage.map((x) => x), Stage.map((x) => x), Stage.writeTo(Sinks.collect())),
      options
    )
    expect(dag.vertices[0]!.name).toBe("items→map→map-2→collect")
    expect(() =>
      plan(
        Pipeline.from(Sources.fromIterable([1])).pipe(
          Stage.map((x) => x),
          Stage.withName("same"),
          Stage.map((x) => x),
          Stage.withName("same"),
          Stage.writeTo(Sinks.collect())
        ),
        options
      )
    ).toThrow(/two stages are named "same"/)
  })
})

describe("mistakes are plan errors naming the stage", () => {
  const endless = Pipeline.from(Sources.generator({ make: (seq) => seq }))
  const finite = Pipeline.from(Sources.generator({ make: (seq) => seq, count: 10 }))
  const planned = (build: (input: typeof endless) => Pipeline.Pipeline<never>) => () => plan(build(endless), options)

  it("a stage that needs the whole input over an unbounded source: a global aggregate, sort, cogroup, a join's side", () => {
    const aggregate = (input: typeof endless) => input.pipe(Stage.aggregate(Aggregate.counting()), Stage.writeTo(Sinks.collect()))
    expect(planned(aggregate)).toThrow(
      /stage "aggregate": an aggregate without a window needs a bounded input, but source "generator" is unbounded; add Stage.window/
    )
    expect(() => plan(aggregate(finite), options)).not.toThrow()
    expect(planned((input) => input.pipe(Stage.map((n) => n), Stage.sort((a, b) => a - b), Stage.writeTo(Sinks.collect()))))
      .toThrow(/stage "sort": sort needs a bounded input, but source "generator" is unbounded/)
    expect(planned((input) =>
      Stage.cogroup({ n: Stage.input(input.pipe(Stage.groupingKey((n) => n % 2)), Aggregate.counting()) }).pipe(Stage.writeTo(Sinks.collect()))
    )).toThrow(/stage "cogroup": cogroup needs a bounded input/)
    const join = (main: typeof endless, side: typeof endless) =>
      main.pipe(Stage.hashJoin(side, { left: (x) => x, right: (y) => y }, (x, y) => [x, y]), Stage.writeTo(Sinks.collect()))
    expect(() => plan(join(finite, endless), options)).toThrow(/stage "hashJoin": the side input of a join .* source "generator-2" is unbounded/)
    // An unbounded main input streams through the join; a window makes an aggregate emit as it goes.
    expect(() => plan(join(endless, finite), options)).not.toThrow()
    expect(() =>
      plan(endless.pipe(
        Stage.withTimestamps((n) => n, { allowedLag: 0 }),
        Stage.window(Window.tumbling(10)),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(Sinks.collect())
      ), options)
    ).not.toThrow()
  })

  it("a window before a stage that does not take one", () => {
    const windowed = finite.pipe(Stage.withTimestamps((n) => n, { allowedLag: 0 }), Stage.window(Window.tumbling(1000)))
    expect(() => plan(windowed.pipe(Stage.rollingAggregate(Aggregate.counting()), Stage.writeTo(Sinks.collect())), options))
      .toThrow(/stage "rollingAggregate": rollingAggregate does not take a window; Stage.window applies to the Stage.aggregate after it/)
    expect(() => plan(windowed.pipe(Stage.distinct, Stage.withName("dedup"), Stage.writeTo(Sinks.collect())), options))
      .toThrow(/stage "dedup": distinct does not take a window/)
    expect(() => plan(windowed.pipe(Stage.mapStateful(() => 0, (_, n) => n), Stage.writeTo(Sinks.collect())), options))
      .toThrow(/stage "mapStateful": mapStateful does not take a window/)
    const keyedWindow = finite.pipe(Stage.withTimestamps((n) => n, { allowedLag: 0 }), Stage.groupingKey((n) => n % 2), Stage.window(Window.tumbling(10)))
    expect(() => Stage.cogroup({ n: Stage.input(keyedWindow, Aggregate.counting()) })).toThrow(/cogroup: an input does not take a window/)
    // withName between a window and its aggregate keeps the window.
    const dag = plan(windowed.pipe(Stage.withName("timed"), Stage.aggregate(Aggregate.counting()), Stage.writeTo(Sinks.collect())), options)
    expect(dag.vertices.flatMap((v) => v.steps.map((s) => s.name))).toContain("aggregate")
    // A type error too; from JavaScript, a PlanError.
    // @ts-expect-error a window needs Stage.withTimestamps before it
    expect(() => plan(finite.pipe(Stage.window(Window.tumbling(1000)), Stage.withName("w"), Stage.aggregate(Aggregate.counting()), Stage.writeTo(Sinks.collect())), options))
      .toThrow(/a window needs event times/)
  })

  it("negative or non-finite durations", () => {
    const timed = (allowedLag: number, idleTimeout?: number) =>
      finite.pipe(Stage.withTimestamps((n) => n, { allowedLag, idleTimeout }), Stage.writeTo(Sinks.collect()))
    expect(() => plan(timed(-100), options)).toThrow(/stage "timestamps": allowedLag must be zero or more, got -100 ms/)
    expect(() => plan(timed(Infinity), options)).toThrow(/allowedLag must be zero or more/)
    expect(() => plan(timed(0, 0), options)).toThrow(/idleTimeout must be positive, got 0 ms/)
    expect(() => plan(timed(0), options)).not.toThrow()
    expect(() =>
      plan(finite.pipe(Stage.withTimestamps((n) => n, { allowedLag: 0 }), Stage.rollingAggregate(Aggregate.counting(), { ttl: -1 }), Stage.writeTo(Sinks.collect())), options)
    ).toThrow(/stage "rollingAggregate": ttl must be positive, got -1 ms/)
  })

  it("a stage or anything else where a pipeline belongs (from JavaScript)", () => {
    const stage = finite.pipe(Stage.map((n) => n))
    expect(() => plan(stage as any, options)).toThrow(/a stage: end each stage in a sink with Stage.writeTo\(sink\)/)
    expect(() => plan(Pipeline.make(stage as any), options)).toThrow(/end each stage in a sink/)
    expect(() => plan(undefined as any, options)).toThrow(/not a pipeline/)
  })
})

describe("watermark granularity", () => {
  const timed = Pipeline.from(Sources.fromIterable([1234])).pipe(Stage.withTimestamps((t) => t, { allowedLag: 0 }))
  const counted = (window: Window.WindowDefinition) => timed.pipe(Stage.window(window), Stage.aggregate(Aggregate.counting()), Stage.writeTo(Sinks.collect()))
  /** The watermark the timestamps stage of `pipeline` reports after an event at time 1234. */
  const watermarkOf = (pipeline: Pipeline.Pipeline<unknown>) => {
    const step = plan(pipeline, options).vertices.flatMap((v) => v.steps).find((s) => s.name === "timestamps")!
    const op = (Effect.runSync(step.make({ instance: 0, instances: 1 }) as Effect.Effect<Step>) as { op: Operator<number, unknown> }).op
    op.process(0, [1234], [])
    return op.watermark!()
  }

  it("rounds watermarks down to the common step of the tumbling and sliding windows downstream: they close at multiples of it", () => {
    expect(watermarkOf(counted(Window.tumbling("20 millis")))).toBe(1220)
    expect(watermarkOf(Pipeline.make(counted(Window.tumbling("20 millis")), counted(Window.sliding("90 millis", "30 millis"))))).toBe(1230)
  })

  it("keeps watermarks exact where a stage acts on any instant: a session window, an expiry in event time", () => {
    expect(watermarkOf(Pipeline.make(counted(Window.tumbling("20 millis")), counted(Window.session("50 millis"))))).toBe(1234)
    const expiring = timed.pipe(Stage.groupingKey((t) => t % 2), Stage.rollingAggregate(Aggregate.counting(), { ttl: "1 second" }), Stage.writeTo(Sinks.collect()))
    expect(watermarkOf(Pipeline.make(counted(Window.tumbling("20 millis")), expiring))).toBe(1234)
    // Downstream of a window, too: its results are timed events that a later stage may expire.
    const afterWindow = timed.pipe(
      Stage.window(Window.tumbling("20 millis")),
      Stage.aggregate(Aggregate.counting()),
      Stage.groupingKey(() => 0),
      Stage.rollingAggregate(Aggregate.counting(), { ttl: "1 second" }),
      Stage.writeTo(Sinks.collect())
    )
    expect(watermarkOf(afterWindow)).toBe(1234)
  })
})

describe("partitioning", () => {
  it("is stable: fixed hashes, independent of the runtime", () => {
    // Pinned values: a change here moves keyed state between partitions.
    expect([stableHash("apple"), stableHash(42), stableHash([1, "a"]), stableHash(1.5)]).toEqual([
      2973335288,
      142593372,
      3665676063,
      327582077
    ])
    expect(partitionOf("apple", 271)).toBe(stableHash("apple") % 271)
  })

  it("spreads consecutive integers and words evenly over partitions", () => {
    const counts = new Array(271).fill(0)
    for (let i = 0; i < 271_000; i++) counts[partitionOf(i, 271)]++
    expect(Math.max(...counts)).toBeLessThan(1300)
    expect(Math.min(...counts)).toBeGreaterThan(700)
  })
})
