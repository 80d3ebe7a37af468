/**
 * Type-level tests: `npm run typecheck` fails if a wrong composition starts to
 * compile (an unused `@ts-expect-error`) or a stage's type changes.
 */
import { Context, Data, Effect } from "effect"
import * as path from "node:path"
import ts from "typescript"
import { describe, expect, expectTypeOf, it } from "vitest"
import {
  Aggregate,
  type JobError,
  type JobSummary,
  Pipeline,
  type Sink,
  Sinks,
  type SnapshotError,
  Sources,
  Stage,
  Tributary,
  Window
} from "../core/src/index.ts"

interface Trade {
  readonly symbol: string
  readonly price: number
}
const trades = Pipeline.from(Sources.fromIterable<Trade>([]))

describe("stage types", () => {
  it("carry the record type through every stage", () => {
    const prices = trades.pipe(Stage.map((t) => t.price))
    expectTypeOf(prices).toEqualTypeOf<Stage.Stage<number>>()
    const big = trades.pipe(Stage.filter((t): t is Trade & { price: 100 } => t.price === 100))
    expectTypeOf(big).toEqualTypeOf<Stage.Stage<Trade & { price: 100 }>>()
    const chars = trades.pipe(Stage.flatMap((t) => t.symbol.split("")))
    expectTypeOf(chars).toEqualTypeOf<Stage.Stage<string>>()
  })

  it("keyed aggregations return keyed results, global ones the bare value", () => {
    const perSymbol = trades.pipe(Stage.groupingKey((t) => t.symbol), Stage.aggregate(Aggregate.summing((t) => t.price)))
    expectTypeOf(perSymbol).toEqualTypeOf<Stage.Stage<Stage.KeyedResult<string, number>>>()
    const total = trades.pipe(Stage.aggregate(Aggregate.counting()))
    expectTypeOf(total).toEqualTypeOf<Stage.Stage<number>>()
    const both = trades.pipe(Stage.aggregate(Aggregate.allOf({ n: Aggregate.counting(), max: Aggregate.maxBy<Trade>((a, b) => a.price - b.price) })))
    expectTypeOf(both).toEqualTypeOf<Stage.Stage<{ readonly n: number; readonly max: Trade | undefined }>>()
  })

  it("track the services a pipeline needs", () => {
    class Rates extends Context.Service<Rates, { readonly usd: number }>()("Rates") {}
    const converted = trades.pipe(Stage.mapEffect((t) => Effect.map(Rates, (r) => t.price * r.usd)))
    expectTypeOf(converted).toEqualTypeOf<Stage.Stage<number, Stage.Unkeyed, never, Rates>>()
  })

  it("reject wrong compositions", () => {
    // @ts-expect-error a numeric aggregate over records that are not numbers
    trades.pipe(Stage.aggregate(Aggregate.summing((x: number) => x)))
    // @ts-expect-error map is not a keyed stage: group first, then aggregate or mapStateful
    trades.pipe(Stage.groupingKey((t) => t.symbol), Stage.map((t) => t))
    const numbers: Sink.Sink<number> = Sinks.collect<number>()
    // @ts-expect-error a sink of numbers cannot take trades
    trades.pipe(Stage.writeTo(numbers))
    // @ts-expect-error a keyed stage must be aggregated before it reaches a sink
    trades.pipe(Stage.groupingKey((t) => t.symbol), Stage.writeTo(Sinks.collect<Trade>()))
    // @ts-expect-error the join key types must agree
    trades.pipe(Stage.hashJoin(Pipeline.from(Sources.fromIterable([1])), { left: (t) => t.symbol, right: (n: number) => n }, (t) => t))
  })
})

class RateNotFound extends Data.TaggedError("RateNotFound")<{ readonly currency: string }> {}
const rate = (symbol: string) => (symbol === "EUR" ? Effect.fail(new RateNotFound({ currency: symbol })) : Effect.succeed(1))

describe("error types", () => {
  it("carry a stage's own errors into the job's error channel", () => {
    const converted = trades.pipe(Stage.mapEffect((t) => Effect.map(rate(t.symbol), (r) => t.price * r)))
    expectTypeOf(converted).toEqualTypeOf<Stage.Stage<number, Stage.Unkeyed, RateNotFound>>()
    const resource = Effect.acquireRelease(rate("USD"), () => Effect.void)
    const merged = converted.pipe(Stage.merge(trades.pipe(Stage.mapUsingService(resource, (r, t) => t.price * r))))
    expectTypeOf(merged).toEqualTypeOf<Stage.Stage<number, Stage.Unkeyed, RateNotFound>>()
    const job = Tributary.run(merged.pipe(Stage.writeTo(Sinks.collect())))
    expectTypeOf(job).toEqualTypeOf<Effect.Effect<JobSummary, RateNotFound | JobError | SnapshotError>>()
    const caught = job.pipe(Effect.catchTag("RateNotFound", (e) => Effect.succeed(e.currency)))
    expectTypeOf(caught).toEqualTypeOf<Effect.Effect<string | JobSummary, JobError | SnapshotError>>()
  })
})

describe("allOf", () => {
  it("types its ops' lambdas with the record type", () => {
    const stats = trades.pipe(Stage.aggregate(Aggregate.allOf({ n: Aggregate.counting(), avg: Aggregate.averaging((t) => t.price) })))
    expectTypeOf(stats).toEqualTypeOf<Stage.Stage<{ readonly n: number; readonly avg: number }>>()
    // @ts-expect-error the record type flows into the lambdas: a Trade has no `nope`
    trades.pipe(Stage.aggregate(Aggregate.allOf({ avg: Aggregate.averaging((t) => t.nope.deeper) })))
  })
})

describe("event time", () => {
  const timed = trades.pipe(Stage.withTimestamps(() => 0, { allowedLag: 0 }))

  it("a window needs timestamps upstream", () => {
    // @ts-expect-error no withTimestamps before the window
    trades.pipe(Stage.window(Window.tumbling(10)))
    // @ts-expect-error mapEffect emits records without their event times
    timed.pipe(Stage.mapEffect((t) => Effect.succeed(t)), Stage.window(Window.tumbling(10)))
    // @ts-expect-error a merge is timed only if both inputs are
    timed.pipe(Stage.merge(trades), Stage.window(Window.tumbling(10)))
    // @ts-expect-error the records already have timestamps
    timed.pipe(Stage.withTimestamps(() => 0, { allowedLag: 0 }))
  })

  it("timestamps flow through stateless stages and out of a windowed aggregation", () => {
    const top = timed.pipe(
      Stage.map((t) => t),
      Stage.groupingKey((t) => t.symbol),
      Stage.window(Window.tumbling(10)),
      Stage.aggregate(Aggregate.counting()),
      Stage.window(Window.tumbling(10)),
      Stage.aggregate(Aggregate.topN(3, (a, b) => a.value - b.value))
    )
    expectTypeOf(top).toEqualTypeOf<Stage.Stage<Stage.WindowResult<undefined, ReadonlyArray<Stage.WindowResult<string, number>>>, Stage.Unkeyed, never, never, Stage.Timed>>()
  })
})

/** The messages of compiling `source` (a module in test/) against the sources. */
const compileErrors = (source: string): ReadonlyArray<string> => {
  const file = path.join(import.meta.dirname, "compile-check.ts")
  const { config } = ts.readConfigFile(path.join(import.meta.dirname, "../tsconfig.json"), ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, path.join(import.meta.dirname, ".."))
  const host = ts.createCompilerHost(options)
  const read = host.getSourceFile
  host.getSourceFile = (name, language) => (name === file ? ts.createSourceFile(name, source, language) : read(name, language))
  const program = ts.createProgram([file], options, host)
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))
}

describe("compiler messages", () => {
  // The compiler's messages do not depend on the runtime running the suite.
  it.skipIf("Bun" in globalThis || "Deno" in globalThis)("name the key brands", () => {
    const errors = compileErrors(`
      import { Pipeline, Sources, Stage, Window } from "../core/src/index.ts"
      Pipeline.from(Sources.fromIterable([{ k: "a" }])).pipe(Stage.groupingKey((r) => r.k), Stage.map((r) => r))
      Pipeline.from(Sources.fromIterable([1])).pipe(Stage.withIngestionTimestamps, Stage.window(Window.tumbling(10)), Stage.map((r) => r))
    `)
    expect(errors).toHaveLength(2)
    expect(errors[0]).toContain("Type 'string' is not assignable to type 'Unkeyed'")
    expect(errors[1]).toContain("Windowed<Unkeyed>")
    for (const e of errors) expect(e).not.toContain("unique symbol")
  }, 60_000)
})
