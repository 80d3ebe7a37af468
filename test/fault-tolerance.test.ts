/**
 * Crash injection: a sequence-numbered replayable source → keyed windowed
 * aggregation → two-phase-commit sinks, with failures injected at random
 * points (in an operator, in the snapshot store, between a sink's prepare and
 * commit) over many seeds.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Aggregate, Pipeline, Sink, Sinks, Sources, Stage, Tributary, Window } from "../core/src/index.ts"
import { Coordinator, FINAL_SNAPSHOT, type Guarantee } from "../core/src/snapshot/Coordinator.ts"
import * as SnapshotStore from "../core/src/snapshot/SnapshotStore.ts"
import { faults, rng } from "./helpers.ts"

const N = 3000

interface Rec {
  readonly seq: number
  readonly key: number
}

type Totals = Stage.WindowResult<number, number>

const run = async (seed: number, guarantee: Guarantee) => {
  const random = rng(seed)
  const parallelism = 1 + Math.floor(random() * 3)
  const inOperator = faults([Math.floor(random() * N), Math.floor(random() * N * 2)])
  const inStore = faults([2 + Math.floor(random() * 6)])
  const inCommit = faults([2 + Math.floor(random() * 6)])
  const base = SnapshotStore.memory()
  const store: SnapshotStore.SnapshotStore = {
    ...base,
    save: (s) => Effect.andThen(Effect.sync(() => inStore("snapshot store")), base.save(s))
  }
  const transactional = guarantee === "exactly-once"
  const records = Sinks.collect<number>({ transactional })
  const windowSink = Sinks.collect<Totals>({ transactional })
  // A sink whose commits fail at random: the snapshot is stored, its transaction not yet visible.
  const windows = Sink.make<Totals>({
    name: "windows",
    open: (ctx) =>
      Effect.map(windowSink.open(ctx) as Effect.Effect<Sink.SinkWriter<Totals>, unknown>, (writer) => ({
        ...writer,
        commit: writer.commit && ((id: number) => Effect.andThen(Effect.sync(() => inCommit("commit")), writer.commit!(id)))
      }))
  })
  const source = Pipeline.from(Sources.generator({ make: (seq): Rec => ({ seq, key: seq % 7 }), count: N, itemsPerSecond: 15_000 })).pipe(
    Stage.map((r) => {
      inOperator("map")
      return r
    })
  )
  const job = Pipeline.make(
    source.pipe(Stage.map((r) => r.seq), Stage.writeTo(records)),
    source.pipe(
      Stage.withTimestamps((r) => r.seq, { allowedLag: 0 }),
      Stage.groupingKey((r) => r.key),
      Stage.window(Window.tumbling(250)),
      Stage.aggregate(Aggregate.summing((r: Rec) => r.seq)),
      Stage.writeTo(windows)
    )
  )
  let restarts = 0
  const outcome = await Effect.runPromise(Effect.exit(Effect.scoped(Effect.gen(function*() {
    const handle = yield* Tributary.submit(job, {
      name: `crash-${seed}`,
      parallelism,
      batchSize: 32,
      processingGuarantee: guarantee,
      snapshotInterval: "10 millis",
      snapshotStore: store
    })
    yield* Effect.ensuring(handle.join, Effect.flatMap(handle.metrics, (m) => Effect.sync(() => void (restarts = m.restarts))))
  }))))
  return { outcome, restarts, records: records.items, windows: windowSink.items }
}

/** The windows a fault-free run gives, by plain loops. */
const expectedWindows = () => {
  const sums = new Map<string, number>()
  for (let seq = 0; seq < N; seq++) {
    const id = `${seq % 7}@${Math.floor(seq / 250) * 250}`
    sums.set(id, (sums.get(id) ?? 0) + seq)
  }
  return sums
}

const windowMap = (items: ReadonlyArray<Totals>) => {
  const m = new Map<string, number>()
  for (const w of items) {
    const id = `${w.key}@${w.start}`
    expect(m.has(id), `window ${id} emitted twice`).toBe(false)
    m.set(id, w.value)
  }
  return m
}

describe("fault tolerance", () => {
  it.each(Array.from({ length: 8 }, (_, i) => i + 1))("exactly-once: every record once, windows exact (seed %i)", async (seed) => {
    const { outcome, records, restarts, windows } = await run(seed, "exactly-once")
    expect(outcome._tag).toBe("Success")
    // The operator fault, a failed snapshot write and a failed commit each restarted the job.
    expect(restarts).toBeGreaterThanOrEqual(3)
    expect([...records].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i))
    expect(windowMap(windows)).toEqual(expectedWindows())
  })

  it.each(Array.from({ length: 4 }, (_, i) => i + 101))("at-least-once: nothing is missing (seed %i)", async (seed) => {
    const { outcome, records, restarts, windows } = await run(seed, "at-least-once")
    expect(outcome._tag).toBe("Success")
    expect(restarts).toBeGreaterThanOrEqual(2)
    expect(new Set(records)).toEqual(new Set(Array.from({ length: N }, (_, i) => i)))
    const seen = new Set(windows.map((w) => `${w.key}@${w.start}`))
    for (const id of expectedWindows().keys()) expect(seen.has(id)).toBe(true)
  })

  it("none: the job fails loudly on the first fault", async () => {
    const { outcome } = await run(7, "none")
    expect(outcome._tag).toBe("Failure")
    if (outcome._tag === "Failure") expect(String(outcome.cause)).toContain("injected fault in map")
  })

  it("gives up after maxRestarts", async () => {
    const always = Pipeline.from(Sources.generator({ make: (i) => i, count: 100 })).pipe(
      Stage.map((): number => {
        throw new Error("always")
      }),
      Stage.writeTo(Sinks.collect())
    )
    const exit = await Effect.runPromise(Effect.exit(Tributary.run(always, { processingGuarantee: "exactly-once", maxRestarts: 2 })))
    expect(exit._tag).toBe("Failure")
    if (exit._tag === "Failure") expect(String(exit.cause)).toContain("always")
  })
})

describe("file sink, exactly-once", () => {
  it.each([1, 2, 3])("a record becomes visible once, after the snapshot that covers it (seed %i)", async (seed) => {
    const fs = await import("node:fs")
    const os = await import("node:os")
    const path = await import("node:path")
    const { Platform } = await import("../core/src/index.ts")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-2pc-"))
    const random = rng(seed)
    const fail = faults([200 + Math.floor(random() * 1500), 1800 + Math.floor(random() * 1000)])
    // Failed snapshot writes: every sink instance has prepared, the snapshot never completes.
    const failSave = faults([2 + Math.floor(random() * 4), 8 + Math.floor(random() * 4)])
    const base = SnapshotStore.memory()
    let completed = 0
    const store: SnapshotStore.SnapshotStore = {
      ...base,
      save: (s) =>
        Effect.andThen(Effect.sync(() => failSave("store")), Effect.tap(base.save(s), () => Effect.sync(() => void (completed = s.id))))
    }
    let early: Array<string> = []
    let visibleWhileRunning = 0
    const job = Pipeline.from(Sources.generator({ make: (seq) => seq, count: N, itemsPerSecond: 15_000 })).pipe(
      Stage.map((seq) => {
        fail("map")
        // Visible files belong to completed snapshots only.
        const visible = fs.readdirSync(dir).filter((f) => f.startsWith("part-"))
        visibleWhileRunning = Math.max(visibleWhileRunning, visible.length)
        early = [...early, ...visible.filter((f) => Number(f.split("-")[2]) > completed)]
        return String(seq)
      }),
      Stage.writeTo(Sinks.directory(dir))
    )
    await Effect.runPromise(Tributary.run(job, {
      parallelism: 2,
      batchSize: 32,
      processingGuarantee: "exactly-once",
      snapshotInterval: "10 millis",
      snapshotStore: store
    }).pipe(Effect.provide(Platform.layer)))
    const files = fs.readdirSync(dir)
    expect(files.every((f) => f.startsWith("part-"))).toBe(true)
    expect(visibleWhileRunning).toBeGreaterThan(0)
    expect(early).toEqual([])
    const lines = files.flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("\n").filter((l) => l.length > 0))
    expect(lines.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i))
  })
})

describe("a branch that ended before a failure", () => {
  it("keeps its committed output exactly once across the restart", async () => {
    const short = Sinks.collect<number>({ transactional: true })
    const long = Sinks.collect<number>({ transactional: true })
    const fail = faults([2500])
    const job = Pipeline.make(
      Pipeline.from(Sources.generator({ make: (i) => i, count: 200 })).pipe(Stage.writeTo(short)),
      Pipeline.from(Sources.generator({ make: (i) => i, count: 4000, itemsPerSecond: 20_000 })).pipe(
        Stage.map((i) => {
          fail("long branch")
          return i
        }),
        Stage.writeTo(long)
      )
    )
    const restarts = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const handle = yield* Tributary.submit(job, { processingGuarantee: "exactly-once", snapshotInterval: "10 millis", batchSize: 50 })
      yield* handle.join
      return (yield* handle.metrics).restarts
    })))
    expect(restarts).toBe(1)
    expect([...short.items].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i))
    expect([...long.items].sort((a, b) => a - b)).toEqual(Array.from({ length: 4000 }, (_, i) => i))
  })
})

describe("file source, exactly-once", () => {
  it("replays from its position after a failure: every line once", async () => {
    const fs = await import("node:fs")
    const os = await import("node:os")
    const path = await import("node:path")
    const { Platform } = await import("../core/src/index.ts")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-replay-"))
    const expected: Array<string> = []
    for (let f = 0; f < 4; f++) {
      const lines = Array.from({ length: 700 }, (_, i) => `file${f}-line${i}`)
      expected.push(...lines)
      fs.writeFileSync(path.join(dir, `in-${f}.txt`), lines.join("\n") + "\n")
    }
    const fail = faults([900, 2100])
    const out = Sinks.collect<string>({ transactional: true })
    // Slow enough for snapshots to land between the faults.
    const job = Pipeline.from(Sources.files(dir)).pipe(
      Stage.mapEffect((line: string) => {
        fail("slow map")
        return Effect.as(Effect.sleep(0), line)
      }, { concurrency: 64 }),
      Stage.writeTo(out)
    )
    const restarts = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const handle = yield* Tributary.submit(job, { parallelism: 2, batchSize: 50, processingGuarantee: "exactly-once", snapshotInterval: "5 millis" })
      yield* handle.join
      return (yield* handle.metrics).restarts
    })).pipe(Effect.provide(Platform.layer)))
    expect(restarts).toBe(2)
    expect([...out.items].sort()).toEqual([...expected].sort())
  })
})

/** The coordinator's and memory store's effects need no services. */
const runEffect = <A, E>(effect: Effect.Effect<A, E, any>) => Effect.runPromise(effect as Effect.Effect<A, E>)

describe("snapshot coordinator", () => {
  it("a sink that acknowledged a snapshot and ended after it commits its final transaction only with a later snapshot", async () => {
    const store = SnapshotStore.memory()
    const coordinator = new Coordinator("job", store, 2, "exactly-once", 0)
    const commits: Array<number> = []
    coordinator.register("sink#0", (id) => Effect.sync(() => void commits.push(id)))
    const part = { steps: [], position: undefined }
    await runEffect(Effect.gen(function*() {
      coordinator.request()
      yield* coordinator.ack(1, "sink#0", part)
      // The sink ends (its records after barrier 1 are in its final transaction) before snapshot 1 completes.
      yield* coordinator.done("sink#0", part)
      yield* coordinator.ack(1, "other#0", part)
    }))
    // Restored from snapshot 1, the sink replays what followed barrier 1: its final transaction must stay open.
    expect(commits).toEqual([1])
    expect((await runEffect(SnapshotStore.latest(store, "job")))?.ended).toEqual([])
    await runEffect(Effect.gen(function*() {
      coordinator.request()
      yield* coordinator.ack(2, "other#0", part)
    }))
    expect(commits).toEqual([1, 2, FINAL_SNAPSHOT])
    expect((await runEffect(SnapshotStore.latest(store, "job")))?.ended).toEqual(["sink#0"])
  })

  it("commits nothing of a snapshot that does not read back intact from its store", async () => {
    const base = SnapshotStore.memory()
    // A store that damages what it writes (a disk flipping a bit).
    const store: SnapshotStore.SnapshotStore = {
      ...base,
      save: (s) => Effect.andThen(base.save(s), Effect.sync(() => {
        const frames = base.raw.get(s.job)!.get(s.id)!
        const last = frames.at(-1)!.slice()
        last[last.length - 1]! ^= 1
        base.raw.get(s.job)!.set(s.id, [...frames.slice(0, -1), last])
      }))
    }
    const coordinator = new Coordinator("job", store, 1, "exactly-once", 0)
    const commits: Array<number> = []
    coordinator.register("sink#0", (id) => Effect.sync(() => void commits.push(id)))
    coordinator.request()
    const error = await runEffect(Effect.flip(coordinator.ack(1, "sink#0", { steps: [], position: undefined })))
    expect(String(error)).toMatch(/snapshot 1 in memory is damaged: frame 0: checksum mismatch/)
    expect(commits).toEqual([])
    expect(coordinator.completed).toBe(0)
  })

  it("a job whose tasklets did not all report their end under their own keys fails instead of committing", async () => {
    const coordinator = new Coordinator("job", SnapshotStore.memory(), 2, "exactly-once", 0)
    const commits: Array<number> = []
    coordinator.register("sink#0", (id) => Effect.sync(() => void commits.push(id)))
    const part = { steps: [], position: undefined }
    // Two tasklets under one key (two vertices named alike): one end is heard.
    await runEffect(Effect.andThen(coordinator.done("sink#0", part), coordinator.done("sink#0", part)))
    const error = await runEffect(Effect.flip(coordinator.finish()))
    expect(String(error)).toMatch(/1 of 2 tasklets reported their end; no final transaction is committed/)
    expect(commits).toEqual([])
  })
})
