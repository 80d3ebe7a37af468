/**
 * Faults at the edge: a source whose server goes away retries with backoff
 * and resumes each split from its position; a sink retries the calls that may
 * be repeated; past the limit the job fails with a ConnectorError naming the
 * connector, the server and the last cause.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Aggregate, ConnectorError, Pipeline, type Retry, Sinks, SourceError, Sources, Splits, Stage, Transactional, Tributary } from "../core/src/index.ts"
import * as SnapshotStore from "../core/src/snapshot/SnapshotStore.ts"

/** Two splits of 100 numbers each, read 10 at a time; `fails(pull)` says whether the n-th pull of any split breaks. */
const flaky = (fails: (pull: number) => boolean, retry: Retry.RetryOptions | undefined) => {
  let pulls = 0
  let opens = 0
  const source = Splits.make({
    name: "flaky",
    bounded: true,
    retry,
    enumerate: () => Effect.succeed([{ id: "a" }, { id: "b" }]),
    open: (split, position) =>
      Effect.sync(() => {
        opens++
        let next = typeof position === "number" ? position : 0
        const base = split.id === "a" ? 0 : 1000
        return {
          position: () => next,
          pull: Effect.suspend(() => {
            if (fails(++pulls)) return Effect.fail(new Error("connection reset by peer"))
            if (next >= 100) return Effect.succeed(undefined)
            const batch = Array.from({ length: 10 }, (_, i) => base + next + i)
            next += 10
            return Effect.succeed(batch)
          })
        }
      })
  })
  return { source, opens: () => opens }
}

const expected = [...Array.from({ length: 100 }, (_, i) => i), ...Array.from({ length: 100 }, (_, i) => 1000 + i)]

describe("a source whose server goes away", () => {
  it("retries, opens the split again at its position, and loses or repeats nothing; the retries are in the metrics", async () => {
    const { source, opens } = flaky((n) => n === 3 || n === 4 || n === 15, { server: "flaky.example:9000", delay: "1 millis" })
    const out = Sinks.collect<number>()
    const metrics = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(source).pipe(Stage.writeTo(out)))
      yield* job.join
      return yield* job.metrics
    })))
    expect([...out.items].sort((a, b) => a - b)).toEqual(expected)
    expect(metrics.instances.reduce((n, m) => n + m.retries, 0)).toBe(3)
    // Each failure dropped the split's connection: two first opens, three reopens.
    expect(opens()).toBe(5)
  })

  it("past the limit fails the job with a ConnectorError naming the connector, the server and the last cause", async () => {
    const { source } = flaky((n) => n >= 3, { server: "flaky.example:9000", times: 3, delay: "1 millis" })
    const error = await Effect.runPromise(Effect.flip(Tributary.run(Pipeline.from(source).pipe(Stage.writeTo(Sinks.collect<number>())))))
    expect(error).toBeInstanceOf(ConnectorError)
    expect((error as ConnectorError).message).toBe(`connector "flaky" gave up on flaky.example:9000 after 4 attempts: connection reset by peer`)
  })

  it("a failure that is not retryable fails the job at once", async () => {
    const { source, opens } = flaky((n) => n === 3, { server: "s", delay: "1 millis", retryable: () => false })
    const error = await Effect.runPromise(Effect.flip(Tributary.run(Pipeline.from(source).pipe(Stage.writeTo(Sinks.collect<number>())))))
    expect(error).toBeInstanceOf(SourceError)
    expect(opens()).toBe(1)
  })
})

/** Fails the calls `fails` picks (by their number, from 1) as a server gone away would. */
const breaking = (fails: (call: number) => boolean) => {
  let calls = 0
  return <A>(effect: Effect.Effect<A>) => Effect.suspend(() => (fails(++calls) ? Effect.fail(new Error("connection refused")) : effect))
}

const totals = (table: Map<number, number>) => [...table.entries()].sort(([a], [b]) => a - b)
const N = 500
const expectedTotals = Array.from({ length: 5 }, (_, k) => [k, (N / 5) * k + (N / 5) * ((N / 5) - 1) * 5 / 2] as const)

describe("a sink whose server goes away", () => {
  /** A running sum per key k = i % 5 of 0..N-1, upserted into `table`. */
  const upserting = (retry: Retry.RetryOptions | undefined, fails: (call: number) => boolean, table: Map<number, number>) => {
    const broken = breaking(fails)
    return Pipeline.from(Sources.fromIterable(Array.from({ length: N }, (_, i) => i))).pipe(
      Stage.groupingKey((i: number) => i % 5),
      Stage.rollingAggregate(Aggregate.summing((i: number) => i)),
      Stage.writeTo(Transactional.idempotent({
        name: "totals",
        key: (r: Stage.KeyedResult<number, number>) => r.key,
        retry,
        open: () =>
          Effect.succeed({
            upsert: (rows: ReadonlyArray<Stage.KeyedResult<number, number>>) => broken(Effect.sync(() => rows.forEach((r) => table.set(r.key, r.value))))
          })
      }))
    )
  }

  it("an upsert sink retries the upsert and ends with every key's last value; the retries are in the metrics", async () => {
    const table = new Map<number, number>()
    const metrics = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(upserting({ server: "db.example:5432", delay: "1 millis" }, (n) => n === 2 || n === 3, table), { batchSize: 7 })
      yield* job.join
      return yield* job.metrics
    })))
    expect(totals(table)).toEqual(expectedTotals)
    expect(metrics.instances.reduce((n, m) => n + m.retries, 0)).toBe(2)
  })

  it("past the limit, the sink fails the job with a ConnectorError naming it and its server", async () => {
    const error = await Effect.runPromise(Effect.flip(Tributary.run(upserting({ server: "db.example:5432", times: 2, delay: "1 millis" }, () => true, new Map()))))
    expect(error).toBeInstanceOf(ConnectorError)
    expect((error as ConnectorError).message).toBe(`connector "totals" gave up on db.example:5432 after 3 attempts: connection refused`)
  })

  it("a two-phase-commit sink retries commits (they may be repeated): each record once", async () => {
    const committed: Array<number> = []
    const prepared = new Map<string, ReadonlyArray<number>>()
    const broken = breaking((n) => n % 3 === 1)
    const sink = Transactional.make<number, Array<number>>({
      name: "rows",
      retry: { server: "db.example:5432", delay: "1 millis" },
      open: () =>
        Effect.succeed({
          begin: Effect.sync(() => []),
          write: (tx, batch) => Effect.sync(() => void tx.push(...batch)),
          prepare: (tx, id) => Effect.sync(() => void prepared.set(Transactional.format(id), tx)),
          commit: (id) =>
            broken(Effect.sync(() => {
              committed.push(...(prepared.get(Transactional.format(id)) ?? []))
              prepared.delete(Transactional.format(id))
            })),
          abort: (id) => Effect.sync(() => void prepared.delete(Transactional.format(id))),
          recover: Effect.sync(() => [])
        })
    })
    const metrics = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(Sources.fromIterable(Array.from({ length: N }, (_, i) => i))).pipe(
          Stage.mapEffect((i: number) => Effect.as(Effect.sleep(0), i)),
          Stage.writeTo(sink)
        ),
        { processingGuarantee: "exactly-once", snapshotInterval: "5 millis", batchSize: 16, snapshotStore: SnapshotStore.memory() }
      )
      yield* job.join
      return yield* job.metrics
    })))
    expect([...committed].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i))
    expect(metrics.restarts).toBe(0)
    expect(metrics.instances.reduce((n, m) => n + m.retries, 0)).toBeGreaterThan(0)
  })
})
