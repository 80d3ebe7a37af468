/**
 * Each aggregate operation gives the result a user expects, computed here by
 * hand, through a job with several instances (so accumulate, combine and
 * export all run); ops with `deduct` undo exactly what they accumulated.
 */
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, Sinks, Sources, Stage, StageError } from "../core/src/index.ts"
import type { AggregateOp } from "../core/src/aggregate/AggregateOp.ts"
import { failureOf, runJob } from "./helpers.ts"

interface Sale {
  readonly shop: string
  readonly item: string
  readonly price: number
}

const sales: ReadonlyArray<Sale> = [
  { shop: "north", item: "tea", price: 4 },
  { shop: "south", item: "cake", price: 7 },
  { shop: "north", item: "cake", price: 6 },
  { shop: "north", item: "tea", price: 2 },
  { shop: "south", item: "coffee", price: 3 },
  { shop: "north", item: "coffee", price: 5 }
]

/** The aggregate of all sales of one shop, run with 3 instances and small batches. */
const perShop = async <A, R>(op: AggregateOp<Sale, A, R>): Promise<Record<string, R>> => {
  const out = Sinks.collect<Stage.KeyedResult<string, R>>()
  await runJob(Pipeline.from(Sources.fromIterable(sales)).pipe(Stage.groupingKey((s) => s.shop), Stage.aggregate(op), Stage.writeTo(out)), {
    parallelism: 3,
    batchSize: 2
  })
  return Object.fromEntries(out.items.map((r) => [r.key, r.value]))
}

const byPrice = (a: Sale, b: Sale) => a.price - b.price

describe("aggregate operations", () => {
  it("counting, summing, averaging", async () => {
    expect(await perShop(Aggregate.counting())).toEqual({ north: 4, south: 2 })
    expect(await perShop(Aggregate.summing((s: Sale) => s.price))).toEqual({ north: 17, south: 10 })
    expect(await perShop(Aggregate.averaging((s: Sale) => s.price))).toEqual({ north: 4.25, south: 5 })
  })

  it("minBy, maxBy, topN (greatest first), bottomN (least first)", async () => {
    expect(await perShop(Aggregate.minBy(byPrice))).toEqual({ north: sales[3], south: sales[4] })
    expect(await perShop(Aggregate.maxBy(byPrice))).toEqual({ north: sales[2], south: sales[1] })
    expect(await perShop(Aggregate.topN(2, byPrice))).toEqual({ north: [sales[2], sales[5]], south: [sales[1], sales[4]] })
    expect(await perShop(Aggregate.bottomN(3, byPrice))).toEqual({ north: [sales[3], sales[0], sales[5]], south: [sales[4], sales[1]] })
  })

  it("toList, toSet, toMap, groupingBy", async () => {
    const lists = await perShop(Aggregate.mapping((s: Sale) => s.price, Aggregate.toList()))
    expect([...lists.north!].sort()).toEqual([2, 4, 5, 6])
    const items = await perShop(Aggregate.mapping((s: Sale) => s.item, Aggregate.toSet()))
    expect(items).toEqual({ north: new Set(["tea", "cake", "coffee"]), south: new Set(["cake", "coffee"]) })
    const prices = await perShop(Aggregate.filtering((s: Sale) => s.item !== "tea", Aggregate.toMap((s: Sale) => s.item, (s: Sale) => s.price)))
    expect(prices).toEqual({ north: new Map([["cake", 6], ["coffee", 5]]), south: new Map([["cake", 7], ["coffee", 3]]) })
    const perItem = await perShop(Aggregate.groupingBy((s: Sale) => s.item, Aggregate.summing((s: Sale) => s.price)))
    expect(perItem).toEqual({ north: new Map([["tea", 6], ["cake", 6], ["coffee", 5]]), south: new Map([["cake", 7], ["coffee", 3]]) })
  })

  it("toMap fails the job on a duplicate key, naming the stage and the key", async () => {
    const error = await failureOf(
      Pipeline.from(Sources.fromIterable(sales)).pipe(
        Stage.groupingKey((s) => s.shop),
        Stage.aggregate(Aggregate.toMap((s: Sale) => s.item, (s: Sale) => s.price)),
        Stage.withName("price-list"),
        Stage.writeTo(Sinks.collect())
      ),
      { parallelism: 2 }
    )
    expect(error).toBeInstanceOf(StageError)
    expect((error as StageError).stage).toBe("price-list")
    expect((error as StageError).message).toContain(`duplicate key "tea"`)
  })

  it("reducing, pickAny, flatMapping", async () => {
    expect(await perShop(Aggregate.reducing(1, (s: Sale) => s.price, (a, b) => a * b))).toEqual({ north: 240, south: 21 })
    const any = await perShop(Aggregate.pickAny())
    expect(sales.filter((s) => s.shop === "north")).toContainEqual(any.north)
    expect(await perShop(Aggregate.flatMapping((s: Sale) => s.item.split(""), Aggregate.counting()))).toEqual({ north: 16, south: 10 })
  })

  it("allOf gives a record or a tuple of results, typed", async () => {
    const stats = await perShop(Aggregate.allOf({ n: Aggregate.counting<Sale>(), top: Aggregate.maxBy(byPrice) }))
    expect(stats.north).toEqual({ n: 4, top: sales[2] })
    const tuple = await perShop(Aggregate.allOf(Aggregate.counting<Sale>(), Aggregate.summing((s: Sale) => s.price)))
    expect(tuple.south).toEqual([2, 10])
  })

  it("linearTrend is the least-squares slope", async () => {
    // Points on y = 3x + 2 with noise that cancels: slope exactly 3.
    const points = [0, 1, 2, 3, 4, 5].map((x) => ({ x, y: 3 * x + 2 + (x % 2 === 0 ? 0.5 : -0.5) }))
    const out = Sinks.collect<number>()
    await runJob(
      Pipeline.from(Sources.fromIterable(points)).pipe(Stage.aggregate(Aggregate.linearTrend((p) => p.x, (p) => p.y)), Stage.writeTo(out)),
      { parallelism: 3, batchSize: 1 }
    )
    // Independent: slope = cov(x, y) / var(x).
    const mean = (v: ReadonlyArray<number>) => v.reduce((a, b) => a + b, 0) / v.length
    const mx = mean(points.map((p) => p.x))
    const my = mean(points.map((p) => p.y))
    const slope = points.reduce((n, p) => n + (p.x - mx) * (p.y - my), 0) / points.reduce((n, p) => n + (p.x - mx) ** 2, 0)
    expect(out.items[0]).toBeCloseTo(slope, 9)
    expect(Aggregate.linearTrend((p: { x: number }) => p.x, () => 1).export(Aggregate.linearTrend((p: { x: number }) => p.x, () => 1).create()))
      .toBeNaN()
  })

  it("a user-defined operation runs in two stages like the built-in ones", async () => {
    const priceRange = Aggregate.make<Sale, { lo: number; hi: number }, number>({
      create: () => ({ lo: Infinity, hi: -Infinity }),
      accumulate: (acc, s) => ({ lo: Math.min(acc.lo, s.price), hi: Math.max(acc.hi, s.price) }),
      combine: (a, b) => ({ lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) }),
      export: ({ lo, hi }) => hi - lo
    })
    expect(await perShop(priceRange)).toEqual({ north: 4, south: 4 })
  })

  it("deduct undoes accumulate exactly for the ops that have it", () => {
    const ops: ReadonlyArray<AggregateOp<Sale, any, unknown>> = [
      Aggregate.counting(),
      Aggregate.summing((s: Sale) => s.price),
      Aggregate.averaging((s: Sale) => s.price),
      Aggregate.linearTrend((s: Sale) => s.price, (s: Sale) => s.item.length),
      Aggregate.reducing(0, (s: Sale) => s.price, (a, b) => a + b, (a, b) => a - b),
      Aggregate.allOf(Aggregate.counting<Sale>(), Aggregate.summing((s: Sale) => s.price))
    ]
    const fold = <A>(op: AggregateOp<Sale, A, unknown>, xs: ReadonlyArray<Sale>) => xs.reduce((acc, s) => op.accumulate(acc, s), op.create())
    for (const op of ops) {
      expect(op.deduct, op.name).toBeDefined()
      const all = fold(op, sales)
      const head = fold(op, sales.slice(0, 2))
      expect(op.export(op.deduct!(all, head)), op.name).toEqual(op.export(fold(op, sales.slice(2))))
    }
    expect(Aggregate.maxBy(byPrice).deduct).toBeUndefined()
  })

  it("linearTrend keeps its precision on epoch-millisecond x, through combine and a sliding deduct", () => {
    // Reports every 500 ms from an epoch instant, y rising 6 per report with a wobble of ±2.
    const points = Array.from({ length: 200 }, (_, k) => ({ x: 1_700_000_000_000 + k * 500, y: 6 * k + (k % 2 === 0 ? 2 : -2) }))
    // Independent: the least-squares slope on small x (offsets from the first report).
    const slopeOf = (ps: ReadonlyArray<{ x: number; y: number }>) => {
      const xs = ps.map((p) => p.x - points[0]!.x)
      const mx = xs.reduce((a, b) => a + b, 0) / xs.length
      const my = ps.reduce((a, p) => a + p.y, 0) / ps.length
      return ps.reduce((a, p, i) => a + (xs[i]! - mx) * (p.y - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0)
    }
    const op = Aggregate.linearTrend((p: { x: number; y: number }) => p.x, (p) => p.y)
    const fold = (ps: ReadonlyArray<{ x: number; y: number }>) => ps.reduce(op.accumulate, op.create())
    expect(op.export(fold(points))).toBeCloseTo(slopeOf(points), 12)
    expect(op.export(op.combine(op.combine(fold(points.slice(0, 70)), fold(points.slice(70, 71))), fold(points.slice(71))))).toBeCloseTo(slopeOf(points), 12)
    // A window of 5 frames of 4 reports slides frame by frame: add the newest, deduct the oldest.
    const frames = Array.from({ length: 50 }, (_, f) => points.slice(f * 4, f * 4 + 4))
    let running = op.create()
    frames.forEach((frame, f) => {
      running = op.combine(running, fold(frame))
      if (f >= 4) {
        const window = frames.slice(f - 4, f + 1).flat()
        expect(op.export(running)).toBe(op.export(fold(window)))
        expect(op.export(running)).toBeCloseTo(slopeOf(window), 12)
        running = op.deduct!(running, fold(frames[f - 4]!))
      }
    })
  })
})

