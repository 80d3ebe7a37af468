import { Data, Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, Sinks, Sources, Stage, type Stage as S, Tributary } from "../core/src/index.ts"
import { runJob, sorted } from "./helpers.ts"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
const parallelisms = [1, 2, 4]

describe("stateless stages", () => {
  it.each(parallelisms)("map, filter, flatMap and peek fuse and keep every record (parallelism %i)", async (parallelism) => {
    const out = Sinks.collect<string>()
    const peeked: Array<number> = []
    await runJob(
      Pipeline.from(Sources.fromIterable(range(5000))).pipe(
        Stage.map((x) => x * 3),
        Stage.filter((x) => x % 2 === 0),
        Stage.peek((x) => peeked.push(x)),
        Stage.flatMap((x) => (x % 4 === 0 ? [`${x}a`, `${x}b`] : [`${x}`])),
        Stage.writeTo(out)
      ),
      { parallelism, batchSize: 64 }
    )
    const expected = range(5000).map((x) => x * 3).filter((x) => x % 2 === 0).flatMap((x) =>
      x % 4 === 0 ? [`${x}a`, `${x}b`] : [`${x}`]
    )
    expect(sorted(out.items)).toEqual(sorted(expected))
    expect(sorted(peeked, (a, b) => a - b)).toEqual(range(5000).map((x) => x * 3).filter((x) => x % 2 === 0))
  })

  it("flatMap accepts any iterable, including generators", async () => {
    const out = Sinks.collect<number>()
    await runJob(
      Pipeline.from(Sources.fromIterable([1, 2, 3])).pipe(
        Stage.flatMap(function*(n: number) {
          for (let i = 0; i < n; i++) yield n
        }),
        Stage.writeTo(out)
      )
    )
    expect(sorted(out.items, (a, b) => a - b)).toEqual([1, 2, 2, 3, 3, 3])
  })

  it("mapEffect keeps order when ordered and bounds in-flight effects", async () => {
    let inFlight = 0
    let maxInFlight = 0
    const slowDouble = (x: number) =>
      Effect.gen(function*() {
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        yield* Effect.sleep((x * 7) % 5)
        inFlight--
        return x * 2
      })
    const out = Sinks.collect<number>()
    await runJob(
      Pipeline.from(Sources.fromIterable(range(200))).pipe(Stage.mapEffect(slowDouble, { concurrency: 3 }), Stage.writeTo(out)),
      { batchSize: 50 }
    )
    expect(out.items).toEqual(range(200).map((x) => x * 2))
    expect(maxInFlight).toBe(3)
  })

  it("mapEffect unordered emits every result", async () => {
    const out = Sinks.collect<number>()
    await runJob(
      Pipeline.from(Sources.fromIterable(range(100))).pipe(
        Stage.mapEffect((x: number) => Effect.as(Effect.sleep((x * 13) % 7), x + 1), { concurrency: 8, ordered: false }),
        Stage.writeTo(out)
      ),
      { batchSize: 25 }
    )
    expect(sorted(out.items, (a, b) => a - b)).toEqual(range(100).map((x) => x + 1))
  })

  it("mapUsingService creates the service once per instance and releases it", async () => {
    const events: Array<string> = []
    let created = 0
    const service = Effect.acquireRelease(
      Effect.sync(() => ({ id: created++, offset: 1000 })),
      (s) => Effect.sync(() => events.push(`release ${s.id}`))
    )
    const out = Sinks.collect<number>()
    await runJob(
      Pipeline.from(Sources.fromIterable(range(300))).pipe(
        Stage.mapUsingService(service, (s, x: number) => x + s.offset),
        Stage.writeTo(out)
      ),
      { parallelism: 3, batchSize: 16 }
    )
    expect(created).toBe(3)
    expect(sorted(events)).toEqual(["release 0", "release 1", "release 2"])
    expect(sorted(out.items, (a, b) => a - b)).toEqual(range(300).map((x) => x + 1000))
  })
})

describe("mapBatchedUsingService", () => {
  class LookupFailed extends Data.TaggedError("LookupFailed")<{ readonly key: number }> {}
  const service = Effect.sync(() => ({}))

  it("calls once per batch with the service of its instance, each record answered in order", async () => {
    const calls: Array<number> = []
    const out = Sinks.collect<string>()
    await runJob(
      Pipeline.from(Sources.fromIterable(range(100))).pipe(
        Stage.mapBatchedUsingService(service, (_, batch: ReadonlyArray<number>) =>
          Effect.sync(() => {
            calls.push(batch.length)
            return batch.map((x) => `${x}:${x * 2}`)
          })),
        Stage.writeTo(out)
      ),
      { parallelism: 1, batchSize: 16 }
    )
    expect(calls).toEqual([16, 16, 16, 16, 16, 16, 4])
    expect(out.items).toEqual(range(100).map((x) => `${x}:${x * 2}`))
  })

  it("a batch answered with fewer results fails the job naming the stage; the user's own error reaches the job's error channel", async () => {
    const short = await Effect.runPromise(Effect.flip(Tributary.run(Pipeline.from(Sources.fromIterable(range(10))).pipe(
      Stage.mapBatchedUsingService(service, (_, batch: ReadonlyArray<number>) => Effect.succeed(batch.slice(1))),
      Stage.writeTo(Sinks.collect())
    ))))
    expect(short).toMatchObject({ _tag: "StageError", record: 0 })
    expect(String(short)).toContain("9 results for a batch of 10 records")
    const own = await Effect.runPromise(Effect.flip(Tributary.run(Pipeline.from(Sources.fromIterable(range(10))).pipe(
      Stage.mapBatchedUsingService(service, (_, batch: ReadonlyArray<number>) => Effect.fail(new LookupFailed({ key: batch[0]! }))),
      Stage.writeTo(Sinks.collect())
    ))))
    const typed: LookupFailed | Error = own
    expect(typed).toMatchObject({ _tag: "LookupFailed", key: 0 })
  })
})

describe("keyed and stateful stages", () => {
  const words = "the quick brown fox jumps over the lazy dog the end fox".split(" ")

  it.each(parallelisms)("groupingKey + aggregate counts per key (parallelism %i)", async (parallelism) => {
    const out = Sinks.collect<S.KeyedResult<string, number>>()
    await runJob(
      Pipeline.from(Sources.fromIterable(words)).pipe(
        Stage.groupingKey((w) => w),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(out)
      ),
      { parallelism, batchSize: 3 }
    )
    const expected = new Map<string, number>()
    for (const w of words) expected.set(w, (expected.get(w) ?? 0) + 1)
    expect(new Map(out.items.map((r) => [r.key, r.value]))).toEqual(expected)
    expect(out.items.length).toBe(expected.size)
  })

  it("a global aggregate emits one result, also for empty input", async () => {
    const sum = Sinks.collect<number>()
    const none = Sinks.collect<number>()
    await runJob(
      Pipeline.make(
        Pipeline.from(Sources.fromIterable(range(1001))).pipe(Stage.aggregate(Aggregate.summing((x: number) => x)), Stage.writeTo(sum)),
        Pipeline.from(Sources.fromIterable<number>([])).pipe(Stage.aggregate(Aggregate.counting()), Stage.writeTo(none))
      ),
      { parallelism: 3 }
    )
    expect(sum.items).toEqual([500500])
    expect(none.items).toEqual([0])
  })

  it("composite (object) keys group by value, not identity", async () => {
    const out = Sinks.collect<S.KeyedResult<readonly [string, number], number>>()
    await runJob(
      Pipeline.from(Sources.fromIterable(range(60))).pipe(
        Stage.groupingKey((x) => [x % 2 === 0 ? "even" : "odd", x % 3] as const),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(out)
      ),
      { parallelism: 2, batchSize: 7 }
    )
    expect(out.items.length).toBe(6)
    expect(out.items.every((r) => r.value === 10)).toBe(true)
  })

  it.each(parallelisms)("rollingAggregate emits the running value per key after every record (parallelism %i)", async (parallelism) => {
    const out = Sinks.collect<S.KeyedResult<number, number>>()
    await runJob(
      Pipeline.from(Sources.fromIterable(range(30))).pipe(
        Stage.groupingKey((x) => x % 3),
        Stage.rollingAggregate(Aggregate.summing((x: number) => x)),
        Stage.writeTo(out)
      ),
      { parallelism, batchSize: 4 }
    )
    expect(out.items.length).toBe(30)
    for (const key of [0, 1, 2]) {
      const running = out.items.filter((r) => r.key === key).map((r) => r.value)
      const inputs = range(30).filter((x) => x % 3 === key)
      if (parallelism === 1) {
        // One source instance: records of a key arrive in input order.
        let acc = 0
        expect(running).toEqual(inputs.map((x) => (acc += x)))
      } else {
        // Split sources interleave, but each key's state sees every record once.
        expect(running.length).toBe(inputs.length)
        expect(Math.max(...running)).toBe(inputs.reduce((a, b) => a + b, 0))
        for (let i = 1; i < running.length; i++) expect(running[i]).toBeGreaterThanOrEqual(running[i - 1]!)
      }
    }
  })

  it("mapStateful keeps one state per key", async () => {
    const out = Sinks.collect<string>()
    await runJob(
      Pipeline.from(Sources.fromIterable(["a", "b", "a", "c", "a", "b"])).pipe(
        Stage.groupingKey((s) => s),
        Stage.mapStateful(() => ({ seen: 0 }), (state, item, key) => {
          state.seen++
          return state.seen > 1 ? `${key}#${state.seen}:${item}` : undefined
        }),
        Stage.writeTo(out)
      ),
      { parallelism: 2, batchSize: 1 }
    )
    expect(sorted(out.items)).toEqual(["a#2:a", "a#3:a", "b#2:b"])
  })

  it("distinct passes each value once, or the first record per key", async () => {
    const values = Sinks.collect<number>()
    const firsts = Sinks.collect<string>()
    await runJob(
      Pipeline.make(
        Pipeline.from(Sources.fromIterable(range(500).map((x) => x % 37))).pipe(Stage.distinct, Stage.writeTo(values)),
        Pipeline.from(Sources.fromIterable(["apple", "avocado", "banana", "blueberry", "cherry"])).pipe(
          Stage.groupingKey((s) => s[0]),
          Stage.distinct,
          Stage.writeTo(firsts)
        )
      ),
      { parallelism: 3, batchSize: 10 }
    )
    expect(sorted(values.items, (a, b) => a - b)).toEqual(range(37))
    expect(firsts.items.length).toBe(3)
    expect(new Set(firsts.items.map((s) => s[0]))).toEqual(new Set(["a", "b", "c"]))
  })
})

describe("several inputs", () => {
  const users = [{ id: 1, name: "ann" }, { id: 2, name: "bob" }, { id: 2, name: "bo" }]
  const orders = [{ user: 1, total: 10 }, { user: 2, total: 5 }, { user: 3, total: 7 }]

  it.each(parallelisms)("hashJoin is a left outer join on the side input (parallelism %i)", async (parallelism) => {
    const out = Sinks.collect<string>()
    await runJob(
      Pipeline.from(Sources.fromIterable(orders)).pipe(
        Stage.hashJoin(
          Pipeline.from(Sources.fromIterable(users)),
          { left: (o) => o.user, right: (u) => u.id },
          (o, u) => `${o.total}:${u?.name ?? "-"}`
        ),
        Stage.writeTo(out)
      ),
      { parallelism }
    )
    expect(sorted(out.items)).toEqual(["10:ann", "5:bo", "5:bob", "7:-"])
  })

  it("innerHashJoin drops records without a match", async () => {
    const out = Sinks.collect<string>()
    await runJob(
      Pipeline.from(Sources.fromIterable(orders)).pipe(
        Stage.innerHashJoin(Pipeline.from(Sources.fromIterable(users)), { left: (o) => o.user, right: (u) => u.id }, (o, u) =>
          `${o.total}:${u.name}`),
        Stage.writeTo(out)
      ),
      { parallelism: 2 }
    )
    expect(sorted(out.items)).toEqual(["10:ann", "5:bo", "5:bob"])
  })

  it("cogroup and aggregate2 aggregate several keyed inputs per key", async () => {
    const named = Sinks.collect<S.KeyedResult<number, { readonly orders: number; readonly spent: number; readonly names: ReadonlyArray<string> }>>()
    const pair = Sinks.collect<S.KeyedResult<number, readonly [number, number]>>()
    const byUser = Pipeline.from(Sources.fromIterable(orders)).pipe(Stage.groupingKey((o) => o.user))
    const usersById = Pipeline.from(Sources.fromIterable(users)).pipe(Stage.groupingKey((u) => u.id))
    await runJob(
      Pipeline.make(
        Stage.cogroup({
          orders: Stage.input(byUser, Aggregate.counting()),
          spent: Stage.input(byUser, Aggregate.summing((o) => o.total)),
          names: Stage.input(usersById, Aggregate.mapping((u: { name: string }) => u.name, Aggregate.toList()))
        }).pipe(Stage.writeTo(named)),
        byUser.pipe(Stage.aggregate2(Aggregate.summing((o) => o.total), usersById, Aggregate.counting()), Stage.writeTo(pair))
      ),
      { parallelism: 2 }
    )
    const byKey = new Map(named.items.map((r) => [r.key, r.value]))
    expect(byKey.get(1)).toEqual({ orders: 1, spent: 10, names: ["ann"] })
    expect(byKey.get(2)?.orders).toBe(1)
    expect(sorted(byKey.get(2)?.names ?? [])).toEqual(["bo", "bob"])
    expect(byKey.get(3)).toEqual({ orders: 1, spent: 7, names: [] })
    expect(new Map(pair.items.map((r) => [r.key, r.value]))).toEqual(new Map([[1, [10, 1]], [2, [5, 2]], [3, [7, 0]]]))
  })

  it("merge interleaves two stages of different types", async () => {
    const out = Sinks.collect<number | string>()
    await runJob(
      Pipeline.from(Sources.fromIterable(range(10))).pipe(
        Stage.merge(Pipeline.from(Sources.fromIterable(["a", "b"]))),
        Stage.writeTo(out)
      ),
      { parallelism: 2 }
    )
    expect(sorted(out.items.map(String))).toEqual(sorted([...range(10).map(String), "a", "b"]))
  })

  it("a stage feeding two sinks delivers every record to both", async () => {
    const a = Sinks.collect<number>()
    const b = Sinks.collect<number>()
    const doubled = Pipeline.from(Sources.fromIterable(range(100))).pipe(Stage.map((x) => x * 2))
    await runJob(Pipeline.make(doubled.pipe(Stage.writeTo(a)), doubled.pipe(Stage.filter((x) => x > 100), Stage.writeTo(b))), {
      parallelism: 2,
      batchSize: 8
    })
    expect(sorted(a.items, (x, y) => x - y)).toEqual(range(100).map((x) => x * 2))
    expect(sorted(b.items, (x, y) => x - y)).toEqual(range(100).map((x) => x * 2).filter((x) => x > 100))
  })
})

describe("ordering and distribution", () => {
  it("sort orders the whole bounded input", async () => {
    const values = range(2000).map((i) => (i * 7919) % 2003)
    const out = Sinks.collect<number>()
    await runJob(Pipeline.from(Sources.fromIterable(values)).pipe(Stage.sort((a, b) => a - b), Stage.writeTo(out)), {
      parallelism: 3,
      batchSize: 50
    })
    expect(out.items).toEqual([...values].sort((a, b) => a - b))
  })

  it("rebalance spreads a source that cannot be split over every instance", async () => {
    const instancesSeen = new Set<number>()
    const out = Sinks.collect<number>()
    function* numbers() {
      for (let i = 0; i < 1000; i++) yield i
    }
    const service = Effect.sync(() => ({ id: Math.random() }))
    await runJob(
      Pipeline.from(Sources.fromIterable(numbers())).pipe(
        Stage.rebalance,
        Stage.mapUsingService(service, (s, x: number) => {
          instancesSeen.add(s.id)
          return x
        }),
        Stage.writeTo(out)
      ),
      { parallelism: 3, batchSize: 10 }
    )
    expect(instancesSeen.size).toBe(3)
    expect(sorted(out.items, (a, b) => a - b)).toEqual(range(1000))
  })
})
