/**
 * Type-level tests: `npm run typecheck` fails if a wrong composition starts to
 * compile (an unused `@ts-expect-error`) or a stage's type changes.
 */
import { Context, Effect } from "effect"
import { describe, expectTypeOf, it } from "vitest"
import { Aggregate, Pipeline, type Sink, Sinks, Sources, Stage } from "../core/src/index.ts"

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
    expectTypeOf(converted).toEqualTypeOf<Stage.Stage<number, Stage.Unkeyed, Rates>>()
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
