/**
 * Transactional sinks over a small in-memory transactional system: ids,
 * fencing, recovery after restarts and rescales, idempotent commits, crashes
 * between prepare and commit; and the idempotent mode of an upsert sink.
 */
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, type Sink, Sources, Stage, Transactional, Tributary } from "../core/src/index.ts"
import * as SnapshotStore from "../core/src/snapshot/SnapshotStore.ts"
import { faults, rng } from "./helpers.ts"

/** A store of rows with transactions, shared by every job and sink writing to it. */
const store = <A>(inCommit: (what: string) => void = () => {}) => {
  const rows: Array<{ readonly job: string; readonly row: A }> = []
  const prepared = new Map<string, { readonly id: Transactional.TransactionId; readonly rows: ReadonlyArray<A> }>()
  const epochs = new Map<string, number>()
  let commits = 0
  const sink = (name: string) =>
    Transactional.make<A, Array<A>>({
      name,
      open: (ctx) =>
        Effect.sync(() => {
          const key = `${ctx.job}/${name}`
          return {
            begin: Effect.sync(() => []),
            write: (tx, batch) => Effect.sync(() => void tx.push(...batch)),
            prepare: (tx, id) => Effect.sync(() => void prepared.set(Transactional.format(id), { id, rows: tx })),
            commit: (id) =>
              Effect.sync(() => {
                inCommit("commit")
                commits++
                const tx = prepared.get(Transactional.format(id))
                if (!tx) return
                prepared.delete(Transactional.format(id))
                for (const row of tx.rows) rows.push({ job: id.job, row })
              }),
            abort: (id) => Effect.sync(() => void prepared.delete(Transactional.format(id))),
            recover: Effect.sync(() => [...prepared.values()].map((t) => t.id).filter((id) => `${id.job}/${id.sink}` === key)),
            epoch: { get: Effect.sync(() => epochs.get(key)), set: (e) => Effect.sync(() => void epochs.set(key, e)) }
          }
        })
    })
  return {
    sink,
    rows: (job: string) => rows.filter((r) => r.job === job).map((r) => r.row),
    prepared: () => [...prepared.values()],
    commits: () => commits
  }
}

const open = <A>(sink: Sink.Sink<A>, ctx: Sink.SinkContext) => Effect.runSync(Effect.scoped(sink.open(ctx)) as Effect.Effect<Sink.SinkWriter<A>, unknown>)
const run = (effect: Effect.Effect<void, unknown>) => Effect.runSyncExit(effect)

describe("transactional sinks", () => {
  it("name transactions by job, sink, instance and snapshot: two jobs on one store never collide", () => {
    const ids = [
      { job: "a", sink: "out", instance: 0, snapshot: 1 },
      { job: "b", sink: "out", instance: 0, snapshot: 1 },
      { job: "a", sink: "other", instance: 0, snapshot: 1 },
      { job: "a", sink: "out", instance: 1, snapshot: 1 },
      { job: "a", sink: "out", instance: 0, snapshot: 2 },
      { job: "a/out", sink: "0", instance: 0, snapshot: 1 }
    ]
    expect(new Set(ids.map(Transactional.format)).size).toBe(ids.length)
    const s = store<string>()
    const a = open(s.sink("out"), { instance: 0, instances: 1, job: "a", execution: 1 })
    run(Effect.andThen(a.write(["of a"]), a.prepare!(1)))
    // Job b starts afresh on the same store and sink name: it neither aborts nor fences job a.
    const b = open(s.sink("out"), { instance: 0, instances: 1, job: "b", execution: 5 })
    run(Effect.andThen(b.write(["of b"]), b.prepare!(1)))
    expect(Exit.isSuccess(run(a.commit!(1)))).toBe(true)
    run(b.commit!(1))
    expect(s.rows("a")).toEqual(["of a"])
    expect(s.rows("b")).toEqual(["of b"])
  })

  it("fence off an instance of an older execution once a newer one opened", () => {
    const s = store<string>()
    const ctx = { instance: 0, instances: 1, job: "j" }
    const old = open(s.sink("out"), { ...ctx, execution: 1 })
    run(Effect.all([old.write(["a"]), old.prepare!(1), old.commit!(1), old.write(["b"]), old.prepare!(2)]))
    // Restarted from snapshot 1 while the old instance still runs (a member cut off from the cluster).
    open(s.sink("out"), { ...ctx, execution: 2, restoredSnapshot: 1 })
    const prepared = run(Effect.andThen(old.write(["c"]), old.prepare!(3)))
    expect(Exit.isFailure(prepared) && String(prepared.cause)).toContain("FencedError")
    expect(Exit.isFailure(run(old.commit!(3)))).toBe(true)
    expect(s.rows("j")).toEqual(["a"])
    // Nor can an older execution open again after a newer one.
    const reopened = Effect.runSyncExit(Effect.scoped(s.sink("out").open({ ...ctx, execution: 1, restoredSnapshot: 1 })) as Effect.Effect<unknown, unknown>)
    expect(Exit.isFailure(reopened) && String(reopened.cause)).toContain("FencedError")
  })

  it("on restore, commit what the restored snapshot covers and abort the rest, also of instances gone after a rescale 3 → 2", () => {
    const s = store<string>()
    for (let instance = 0; instance < 3; instance++) {
      const w = open(s.sink("out"), { instance, instances: 3, job: "j", execution: 1 })
      run(Effect.all([w.write([`${instance} by 5`]), w.prepare!(5), w.write([`${instance} after 5`]), w.prepare!(6)]))
    }
    for (let instance = 0; instance < 2; instance++) open(s.sink("out"), { instance, instances: 2, job: "j", execution: 2, restoredSnapshot: 5 })
    expect([...s.rows("j")].sort()).toEqual(["0 by 5", "1 by 5", "2 by 5"])
    expect(s.prepared()).toEqual([])
  })

  it("commit idempotently: a snapshot's transaction reaches the system once", () => {
    const s = store<string>()
    const w = open(s.sink("out"), { instance: 0, instances: 1, job: "j", execution: 1 })
    run(Effect.all([w.write(["a"]), w.prepare!(1), w.write(["b"]), w.prepare!(2), w.commit!(1), w.commit!(1), w.commit!(2), w.commit!(2)]))
    expect(s.commits()).toBe(2)
    expect(s.rows("j")).toEqual(["a", "b"])
  })

  it.each([1, 2, 3, 4, 5, 6])("a crash between prepare and commit gives each record once (seed %i)", async (seed) => {
    const N = 2000
    const random = rng(seed)
    const inMap = faults([Math.floor(random() * N)])
    const s = store<number>(faults([1 + Math.floor(random() * 3), 4 + Math.floor(random() * 3)]))
    const pipeline = Pipeline.from(Sources.generator({ make: (i) => i, count: N, itemsPerSecond: 10_000 })).pipe(
      Stage.map((i) => {
        inMap("map")
        return i
      }),
      Stage.writeTo(s.sink("out"))
    )
    const restarts = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(pipeline, {
        name: "crash",
        parallelism: 1 + Math.floor(random() * 3),
        batchSize: 32,
        processingGuarantee: "exactly-once",
        snapshotInterval: "10 millis",
        snapshotStore: SnapshotStore.memory()
      })
      yield* job.join
      return (yield* job.metrics).restarts
    })))
    expect(restarts).toBeGreaterThanOrEqual(3)
    expect([...s.rows("crash")].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i))
  })

  it.each([1, 2, 3])("idempotent mode: an upsert-by-key sink under exactly-once restarts ends with the right table (seed %i)", async (seed) => {
    const N = 2000
    const random = rng(seed)
    const inMap = faults([Math.floor(random() * N), Math.floor(random() * N * 2), Math.floor(random() * N * 3)])
    const table = new Map<number, number>()
    const sink = Transactional.idempotent({
      name: "counts",
      key: (r: Stage.KeyedResult<number, number>) => r.key,
      open: () =>
        Effect.succeed({
          upsert: (rows: ReadonlyArray<Stage.KeyedResult<number, number>>) =>
            Effect.sync(() => {
              for (const r of rows) table.set(r.key, r.value)
            })
        })
    })
    const pipeline = Pipeline.from(Sources.generator({ make: (i) => i, count: N, itemsPerSecond: 20_000 })).pipe(
      Stage.map((i) => {
        inMap("map")
        return i
      }),
      Stage.groupingKey((i) => i % 11),
      Stage.rollingAggregate(Aggregate.counting()),
      Stage.writeTo(sink)
    )
    await Effect.runPromise(Tributary.run(pipeline, {
      parallelism: 2,
      batchSize: 16,
      processingGuarantee: "exactly-once",
      snapshotInterval: "10 millis",
      snapshotStore: SnapshotStore.memory()
    }))
    const expected = new Map<number, number>()
    for (let i = 0; i < N; i++) expected.set(i % 11, (expected.get(i % 11) ?? 0) + 1)
    expect(table).toEqual(expected)
  })

  it("idempotent mode upserts the last record of each key in a batch, in their order", () => {
    const upserted: Array<ReadonlyArray<readonly [string, number]>> = []
    const sink = Transactional.idempotent({
      name: "upserts",
      key: (r: readonly [string, number]) => r[0],
      open: () => Effect.succeed({ upsert: (rows: ReadonlyArray<readonly [string, number]>) => Effect.sync(() => void upserted.push(rows)) })
    })
    const w = open(sink, { instance: 0, instances: 1 })
    run(Effect.andThen(w.write([["a", 1], ["b", 1], ["a", 2], ["c", 1], ["b", 2]]), w.write([])))
    expect(upserted).toEqual([[["a", 2], ["c", 1], ["b", 2]]])
  })
})
