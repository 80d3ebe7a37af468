import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, PlanError, type Sink, Sinks, SnapshotStore, Sources, Stage, Tributary, Window } from "../core/src/index.ts"

const N = 2000

/** A running count per key: the output shows whether keyed state survived exactly. */
const counting = (out: Sinks.CollectSink<string>, extra: (s: string) => string = (s) => s, sourceParallelism?: number) =>
  Pipeline.from(Sources.generator({ make: (seq) => seq, count: N, itemsPerSecond: 8000, maxParallelism: sourceParallelism })).pipe(
    Stage.groupingKey((seq) => seq % 5),
    Stage.mapStateful(() => ({ n: 0 }), (state, seq, key) => `${key}:${++state.n}:${seq}`),
    Stage.withName("running-count"),
    Stage.map(extra),
    Stage.writeTo(out)
  )

/** Each key's counter must run 1, 2, 3, ... without a gap or a repeat, over exactly the input. */
const expectExact = (items: ReadonlyArray<string>) => {
  const byKey = new Map<string, Array<number>>()
  for (const item of items) {
    const [key, n] = item.split(":")
    byKey.set(key!, [...(byKey.get(key!) ?? []), Number(n)])
  }
  for (const counts of byKey.values()) expect([...counts].sort((a, b) => a - b)).toEqual(counts.map((_, i) => i + 1))
  expect(items.length).toBe(N)
  expect(new Set(items.map((i) => Number(i.split(":")[2])))).toEqual(new Set(Array.from({ length: N }, (_, i) => i)))
}

const options = (store: SnapshotStore.SnapshotStore, name: string) => ({
  name,
  parallelism: 2,
  batchSize: 16,
  processingGuarantee: "exactly-once" as const,
  snapshotInterval: "20 millis" as const,
  snapshotStore: store
})

describe("job lifecycle", () => {
  it("suspend takes a final snapshot and stops; resume continues with the state exactly", async () => {
    const out = Sinks.collect<string>({ transactional: true })
    const store = SnapshotStore.memory()
    const seen = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(counting(out), options(store, "suspendable"))
      while (out.items.length < 300) yield* Effect.sleep(5)
      yield* job.suspend
      const suspended = yield* job.status
      const atSuspend = out.items.length
      yield* Effect.sleep(100)
      const stillStopped = out.items.length === atSuspend
      yield* job.resume
      yield* job.join
      return { suspended, stillStopped, final: yield* job.status }
    })))
    expect(seen).toEqual({ suspended: "suspended", stillStopped: true, final: "completed" })
    expectExact(out.items)
  })

  it("suspend stops the sources at its snapshot: even with at-least-once and a plain sink, resume repeats nothing", async () => {
    const out = Sinks.collect<string>()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(counting(out), { ...options(SnapshotStore.memory(), "suspend-alo"), processingGuarantee: "at-least-once" })
      while (out.items.length < 300) yield* Effect.sleep(5)
      yield* job.suspend
      yield* job.resume
      yield* job.join
    })))
    expectExact(out.items)
  })

  it("restart continues from the last snapshot without loss or duplicates", async () => {
    const out = Sinks.collect<string>({ transactional: true })
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(counting(out), options(SnapshotStore.memory(), "restartable"))
      while (out.items.length < 300) yield* Effect.sleep(5)
      yield* job.restart
      yield* job.join
    })))
    expectExact(out.items)
  })

  it("an exported snapshot starts a changed pipeline with its state, matched by stage name", async () => {
    const out = Sinks.collect<string>({ transactional: true })
    const store = SnapshotStore.memory()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const v1 = yield* Tributary.submit(counting(out, undefined, 1), options(store, "v1"))
      while (out.items.length < 300) yield* Effect.sleep(5)
      yield* v1.suspend
      yield* v1.exportSnapshot("before-upgrade")
      yield* v1.cancel
    })))
    // v2 changes a stateless stage and runs its keyed stage on 3 instances instead of 2:
    // the keyed counters carry on from the export, re-partitioned.
    const upgraded = Sinks.collect<string>({ transactional: true })
    await Effect.runPromise(
      Tributary.run(counting(upgraded, (s) => `${s}:v2`, 1), { ...options(store, "v2"), parallelism: 3, initialSnapshot: "before-upgrade" })
    )
    expect(upgraded.items.length).toBeGreaterThan(0)
    expect(upgraded.items.every((s) => s.endsWith(":v2"))).toBe(true)
    // v1's output up to the export and v2's after it: every record once, every key's count unbroken.
    expectExact([...out.items, ...upgraded.items.map((s) => s.replace(/:v2$/, ""))])
  })

  it("an exported sliding-window job rescaled to 3 instances gives exactly the windows of an uninterrupted run", async () => {
    const windowed = (out: Sink.Sink<string>) =>
      Pipeline.from(Sources.generator({ make: (seq) => seq, count: N, itemsPerSecond: 8000, maxParallelism: 1 })).pipe(
        Stage.withTimestamps((seq) => seq, { allowedLag: 0 }),
        Stage.groupingKey((seq) => seq % 5),
        Stage.window(Window.sliding(100, 20)),
        Stage.aggregate(Aggregate.summing((seq: number) => seq)),
        Stage.withName("sums"),
        Stage.map((r) => `${r.key}@${r.end}=${r.value}`),
        Stage.writeTo(out)
      )
    const reference = Sinks.collect<string>()
    await Effect.runPromise(Tributary.run(windowed(reference), { parallelism: 2 }))
    const before = Sinks.collect<string>({ transactional: true })
    const store = SnapshotStore.memory()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const v1 = yield* Tributary.submit(windowed(before), options(store, "w1"))
      while (before.items.length < 200) yield* Effect.sleep(5)
      yield* v1.suspend
      yield* v1.exportSnapshot("windows")
      yield* v1.cancel
    })))
    const after = Sinks.collect<string>({ transactional: true })
    await Effect.runPromise(Tributary.run(windowed(after), { ...options(store, "w2"), parallelism: 3, initialSnapshot: "windows" }))
    expect(before.items.length).toBeGreaterThan(0)
    expect(after.items.length).toBeGreaterThan(0)
    expect([...before.items, ...after.items].sort()).toEqual([...reference.items].sort())
  })

  it("refuses a snapshot whose stages the new pipeline lacks, naming them", async () => {
    const out = Sinks.collect<string>({ transactional: true })
    const store = SnapshotStore.memory()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const v1 = yield* Tributary.submit(counting(out), options(store, "old"))
      while (out.items.length < 100) yield* Effect.sleep(5)
      yield* v1.exportSnapshot("old-state")
      yield* v1.cancel
    })))
    const stateless = Pipeline.from(Sources.generator({ make: (seq) => seq, count: 10 })).pipe(Stage.map(String), Stage.writeTo(Sinks.collect<string>()))
    const error = await Effect.runPromise(Effect.flip(Tributary.run(stateless, { ...options(store, "new"), initialSnapshot: "old-state" })))
    expect(error).toBeInstanceOf(PlanError)
    expect(error.message).toContain(`stage "running-count"`)
  })

  it("refuses to restore a source with another number of instances, naming it", async () => {
    const out = Sinks.collect<string>({ transactional: true })
    const store = SnapshotStore.memory()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const v1 = yield* Tributary.submit(counting(out), options(store, "two"))
      while (out.items.length < 100) yield* Effect.sleep(5)
      yield* v1.exportSnapshot("two-sources")
      yield* v1.cancel
    })))
    const error = await Effect.runPromise(
      Effect.flip(Tributary.run(counting(Sinks.collect<string>()), { ...options(store, "three"), parallelism: 3, initialSnapshot: "two-sources" }))
    )
    expect(error).toBeInstanceOf(PlanError)
    expect(error.message).toMatch(/2 instances of source "generator.*", which now has 3/)
  })

  it("suspend without a processing guarantee is refused", async () => {
    const error = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(Sources.generator({ make: (i) => i, itemsPerSecond: 100 })).pipe(Stage.writeTo(Sinks.collect())))
      return yield* Effect.flip(job.suspend)
    })))
    expect(error._tag).toBe("JobStateError")
    expect(error.message).toContain("processingGuarantee")
  })
})
