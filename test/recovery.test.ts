/**
 * Exactly-once around the edges of recovery, embedded, with the directory
 * snapshot store and directory sinks as a user runs them: a damaged newest
 * snapshot, a damaged export, a branch that ended before a restart, sinks left
 * at the same default name, a late-events side output fed by two stages.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { JobOptions } from "../core/src/job/Job.ts"
import { Aggregate, Pipeline, Platform, Sinks, SnapshotError, SnapshotStore, Sources, Stage, Tributary, Window } from "../core/src/index.ts"
import type { Pipeline as P } from "../core/src/pipeline/Pipeline.ts"
import { sorted } from "./helpers.ts"

const dirs: Array<string> = []
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-recovery-"))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

const run = (pipeline: P<any, any>, options: JobOptions) =>
  Effect.runPromise(Tributary.run(pipeline, options).pipe(Effect.provide(Platform.layer)) as Effect.Effect<unknown, unknown>)
const failureOf = (pipeline: P<any, any>, options: JobOptions) =>
  Effect.runPromise(Effect.flip(Tributary.run(pipeline, options)).pipe(Effect.provide(Platform.layer)) as Effect.Effect<unknown>)

/** The lines of every committed part file of a directory sink. */
const partLines = (dir: string) =>
  fs.readdirSync(dir).filter((n) => n.startsWith("part-")).flatMap((n) =>
    fs.readFileSync(path.join(dir, n), "utf8").split("\n").filter((l) => l.length > 0)
  )

const snapshotFiles = (dir: string, job: string) =>
  fs.readdirSync(dir).filter((n) => n.startsWith(`${job}.`) && n.endsWith(".snapshot")).sort()

/** Flips a byte in the body of the file's last frame: its checksum no longer matches. */
const flipLastByte = (file: string) => {
  const bytes = fs.readFileSync(file)
  bytes[bytes.length - 1]! ^= 0x5a
  fs.writeFileSync(file, bytes)
}

const byNumber = (a: number, b: number) => a - b
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

const count = { name: "count", create: () => 0, accumulate: (n: number) => n + 1, combine: (a: number, b: number) => a + b, export: (n: number) => n }

/**
 * A rolling count per parity into `out`; `atCall` runs on the n-th count (and may throw). It runs
 * in the last vertex, whose acknowledgement completes a snapshot: when it throws, no snapshot can
 * complete after it.
 */
const countingJob = (n: number, out: string, atCall: (call: number) => void) => {
  let calls = 0
  return Pipeline.from(Sources.generator({ make: (seq) => seq, count: n, itemsPerSecond: 40_000 })).pipe(
    Stage.groupingKey((seq) => (seq % 2 === 0 ? "even" : "odd")),
    Stage.rollingAggregate(count),
    Stage.map((r) => {
      atCall(++calls)
      return `${r.key} ${r.value}`
    }),
    Stage.writeTo(Sinks.directory(out))
  )
}
const everyCount = (n: number) => sorted([...range(n / 2).map((i) => `even ${i + 1}`), ...range(n / 2).map((i) => `odd ${i + 1}`)])

describe("a damaged snapshot", () => {
  const N = 8000
  const crashWith = (damage: (snapshots: string) => void, snapshots: string) => (call: number) => {
    if (call !== 6000) return
    damage(snapshots)
    throw new Error("a crash after the newest snapshot was damaged")
  }

  it("restores the newest intact snapshot instead, and the output keeps every running count once", async () => {
    const out = tempDir()
    const snapshots = tempDir()
    const newest = (dir: string) => flipLastByte(path.join(dir, snapshotFiles(dir, "counts").at(-1)!))
    await run(countingJob(N, out, crashWith(newest, snapshots)), {
      name: "counts",
      processingGuarantee: "exactly-once",
      snapshotInterval: "10 millis",
      snapshotStore: SnapshotStore.directory(snapshots)
    })
    expect(sorted(partLines(out))).toEqual(everyCount(N))
  })

  it("with none intact, fails naming the snapshots and their damage: never a fresh start", async () => {
    const out = tempDir()
    const snapshots = tempDir()
    const every = (dir: string) => snapshotFiles(dir, "counts").forEach((f) => flipLastByte(path.join(dir, f)))
    const error = await failureOf(countingJob(N, out, crashWith(every, snapshots)), {
      name: "counts",
      processingGuarantee: "exactly-once",
      snapshotInterval: "10 millis",
      snapshotStore: SnapshotStore.directory(snapshots)
    })
    expect(error).toBeInstanceOf(SnapshotError)
    expect((error as SnapshotError).message).toMatch(/no intact snapshot in directory .*damaged: \d+ \(frame \d+: checksum mismatch/)
  })

  it("gone altogether after output was committed, fails rather than start over", async () => {
    const out = tempDir()
    const snapshots = tempDir()
    const remove = (dir: string) => snapshotFiles(dir, "counts").forEach((f) => fs.rmSync(path.join(dir, f)))
    const error = await failureOf(countingJob(N, out, crashWith(remove, snapshots)), {
      name: "counts",
      processingGuarantee: "exactly-once",
      snapshotInterval: "10 millis",
      snapshotStore: SnapshotStore.directory(snapshots)
    })
    expect((error as SnapshotError).message).toMatch(/snapshots are gone .* after it committed output up to snapshot \d+: it does not start over/)
  })
})

describe("an exported snapshot", () => {
  /** Exports `count` snapshots of a running counting job under "export", then cancels it. */
  const exportSnapshots = (store: SnapshotStore.SnapshotStore, count: number) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(countingJob(Infinity, tempDir(), () => {}), {
        name: "exporter",
        processingGuarantee: "exactly-once",
        snapshotInterval: "1 hour",
        snapshotStore: store
      })
      for (let i = 0; i < count; i++) {
        yield* Effect.sleep(50)
        yield* job.exportSnapshot("export")
      }
      yield* job.cancel
    })).pipe(Effect.provide(NodeFileSystem.layer)))

  it("that is damaged is reported as damaged, not as missing", async () => {
    const snapshots = tempDir()
    const store = SnapshotStore.directory(snapshots)
    await exportSnapshots(store, 1)
    flipLastByte(path.join(snapshots, snapshotFiles(snapshots, "export")[0]!))
    const error = await failureOf(countingJob(10, tempDir(), () => {}), { processingGuarantee: "exactly-once", snapshotStore: store, initialSnapshot: "export" })
    expect(error).toBeInstanceOf(SnapshotError)
    expect((error as SnapshotError).message).toMatch(/snapshot of job "export": no intact snapshot .*checksum mismatch/)
  })

  it("exported twice under one name, the newer with a damaged length field: the older one is used", async () => {
    const snapshots = tempDir()
    const store = SnapshotStore.directory(snapshots)
    await exportSnapshots(store, 2)
    const [older, newer] = snapshotFiles(snapshots, "export")
    const bytes = fs.readFileSync(path.join(snapshots, newer!))
    bytes.writeUInt32BE(0xfffffff0, 4) // the manifest frame's length: far beyond the file
    fs.writeFileSync(path.join(snapshots, newer!), bytes)
    const restored = await Effect.runPromise(SnapshotStore.latest(store, "export").pipe(Effect.provide(NodeFileSystem.layer)) as Effect.Effect<SnapshotStore.Snapshot | undefined, unknown>)
    expect(restored?.id).toBe(Number(older!.split(".")[1]))
    // The new job's counts go on from the older export's position (the next sequence number).
    const position = restored!.positions[0]![2] as number
    const out = tempDir()
    await run(countingJob(position + 10, out, () => {}), { processingGuarantee: "exactly-once", snapshotStore: store, initialSnapshot: "export" })
    const firstEven = Math.min(...partLines(out).filter((l) => l.startsWith("even")).map((l) => Number(l.split(" ")[1])))
    expect(firstEven).toBe(Math.ceil(position / 2) + 1)
  })
})

describe("a restart after a branch ended", () => {
  it("keeps the ended branch's committed output: it is neither re-run nor overwritten", async () => {
    const small = tempDir()
    const long = tempDir()
    let calls = 0
    await run(
      Pipeline.make(
        Pipeline.from(Sources.fromIterable(range(100))).pipe(Stage.map(String), Stage.writeTo(Sinks.directory(small))),
        Pipeline.from(Sources.generator({ make: (seq) => seq, count: 4000, itemsPerSecond: 20_000 })).pipe(
          Stage.map((seq) => {
            if (++calls === 3000) throw new Error("a crash in the long branch")
            return String(seq)
          }),
          Stage.writeTo(Sinks.directory(long))
        )
      ),
      { processingGuarantee: "exactly-once", snapshotInterval: "10 millis" }
    )
    expect(sorted(partLines(small).map(Number), byNumber)).toEqual(range(100))
    expect(sorted(partLines(long).map(Number), byNumber)).toEqual(range(4000))
  })
})

describe("sinks left at the same default name", () => {
  it("are distinct vertices, so snapshots complete and each gets its own records", async () => {
    const [a, b] = [tempDir(), tempDir()]
    const branch = (dir: string) =>
      Pipeline.from(Sources.generator({ make: (seq) => seq, itemsPerSecond: 2000 })).pipe(Stage.writeTo(Sinks.directory(dir)))
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.make(branch(a), branch(b)), {
        name: "twins",
        parallelism: 2,
        processingGuarantee: "exactly-once",
        snapshotInterval: "10 millis"
      })
      // Output appears once a snapshot completes (and its transactions commit).
      for (let waited = 0; partLines(a).length === 0 || partLines(b).length === 0; waited += 10) {
        if (waited > 3000) throw new Error("no snapshot committed in 3 s")
        yield* Effect.sleep(10)
      }
      yield* job.cancel
    })).pipe(Effect.provide(NodeFileSystem.layer)))
    // Each sink committed the transactions of the completed snapshots, each record once.
    for (const dir of [a, b]) {
      const seqs = partLines(dir).map(Number)
      expect(seqs.length).toBeGreaterThan(0)
      expect(new Set(seqs).size).toBe(seqs.length)
    }
  })
})

describe("a late-events directory sink", () => {
  it("is one sink however many stages feed it: a bounded job completes with every late event in it", async () => {
    const late = tempDir()
    const results = Sinks.collect<Stage.WindowResult<unknown, number>>()
    // 5 is late at the window (its frame closed at watermark 150); the others are on time.
    const events = [0, 10, 20, 200, 5, 210, 300]
    await run(
      Pipeline.from(Sources.fromIterable(events)).pipe(
        Stage.withTimestamps((t) => t, { allowedLag: 50 }),
        Stage.window(Window.tumbling(100), { lateEvents: Sinks.directory(late, { format: (t: number) => String(t) }) }),
        Stage.aggregate(Aggregate.counting()),
        Stage.writeTo(results)
      ),
      { parallelism: 1 }
    )
    expect(partLines(late)).toEqual(["5"])
    expect(results.items.map((r) => r.value).reduce((a, b) => a + b, 0)).toBe(6)
  })
})
