/**
 * Two-stage aggregation (accumulate per instance, combine per key after the
 * partitioned edge) must give exactly what one accumulator over all records
 * gives, for any input, parallelism and batch size.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, Sinks, Sources, Stage } from "../core/src/index.ts"
import type { AggregateOp } from "../core/src/aggregate/AggregateOp.ts"
import { runJob } from "./helpers.ts"

interface Rec {
  readonly key: string
  readonly x: number
  readonly y: number
}

const oneStage = <A, R>(op: AggregateOp<Rec, A, R>, records: ReadonlyArray<Rec>): Map<string, R> => {
  const accs = new Map<string, A>()
  for (const r of records) accs.set(r.key, op.accumulate(accs.has(r.key) ? accs.get(r.key)! : op.create(), r))
  return new Map([...accs].map(([k, a]) => [k, op.export(a)]))
}

const ops = {
  counting: Aggregate.counting<Rec>(),
  summing: Aggregate.summing((r: Rec) => r.x),
  averaging: Aggregate.averaging((r: Rec) => r.x),
  maxBy: Aggregate.maxBy((a: Rec, b: Rec) => a.x - b.x || a.y - b.y),
  minBy: Aggregate.minBy((a: Rec, b: Rec) => a.x - b.x || a.y - b.y),
  topN: Aggregate.topN(3, (a: Rec, b: Rec) => a.x - b.x || a.y - b.y),
  bottomN: Aggregate.bottomN(2, (a: Rec, b: Rec) => a.x - b.x || a.y - b.y),
  groupingBy: Aggregate.groupingBy((r: Rec) => Math.sign(r.x), Aggregate.summing((r: Rec) => r.y)),
  reducing: Aggregate.reducing(0, (r: Rec) => r.x * r.y, (a, b) => a + b),
  filtering: Aggregate.filtering((r: Rec) => r.x > 0, Aggregate.counting<Rec>()),
  flatMapping: Aggregate.flatMapping((r: Rec) => [r.x, r.y], Aggregate.summing((n: number) => n)),
  toSet: Aggregate.mapping((r: Rec) => r.x, Aggregate.toSet()),
  linearTrend: Aggregate.linearTrend((r: Rec) => r.x, (r: Rec) => r.y),
  allOf: Aggregate.allOf({ n: Aggregate.counting<Rec>(), sum: Aggregate.summing((r: Rec) => r.y) })
} as const

const normalise = (v: unknown): unknown =>
  typeof v === "number" ? (Number.isNaN(v) ? "NaN" : Math.round(v * 1e6) / 1e6) :
  v instanceof Set ? [...v].sort((a, b) => a - b) :
  v instanceof Map ? [...v].sort(([a], [b]) => a - b).map(normalise) :
  Array.isArray(v) ? v.map(normalise) :
  v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalise(x)])) :
  v

const record = fc.record({ key: fc.constantFrom("a", "b", "c", "d", "e"), x: fc.integer({ min: -50, max: 50 }), y: fc.integer({ min: -1000, max: 1000 }) })

describe("two-stage aggregation", () => {
  for (const [name, op] of Object.entries(ops)) {
    it(`${name}: equals one-stage for random inputs, parallelism and batch size`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(record, { maxLength: 300 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 64 }), async (records, parallelism, batchSize) => {
          const out = Sinks.collect<Stage.KeyedResult<string, unknown>>()
          await runJob(
            Pipeline.from(Sources.fromIterable(records)).pipe(
              Stage.groupingKey((r) => r.key),
              Stage.aggregate(op as AggregateOp<Rec, unknown, unknown>),
              Stage.writeTo(out)
            ),
            { parallelism, batchSize }
          )
          const expected = oneStage(op as AggregateOp<Rec, unknown, unknown>, records)
          expect(out.items.length).toBe(expected.size)
          for (const { key, value } of out.items) expect(normalise(value)).toEqual(normalise(expected.get(key)))
        }),
        { numRuns: 25 }
      )
    })
  }
})
