/**
 * Sources made of splits: positions are kept per split, so a job restores
 * with another number of source instances and every split resumes where it
 * was. The files source (a file per split) is the built-in one.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Pipeline, PlanError, Sinks, SnapshotStore, Sources, Stage, Tributary } from "../core/src/index.ts"
import type { Job, JobOptions } from "../core/src/job/Job.ts"

const FILES = 12
const LINES = 250

const inputDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-splits-"))
  for (let f = 0; f < FILES; f++) {
    fs.writeFileSync(path.join(dir, `f${String(f).padStart(2, "0")}.txt`), Array.from({ length: LINES }, (_, l) => `${f}-${l}\n`).join(""))
  }
  return dir
}

describe("a source of splits", () => {
  it("restores with 3, then 2, then 5 instances: each line exactly once", async () => {
    const dir = inputDir()
    const store = SnapshotStore.memory()
    let seen = 0
    /** The files, slowed down so that snapshots land mid-way, into a transactional sink of its own. */
    const pipeline = (out: ReturnType<typeof Sinks.collect<string>>) =>
      Pipeline.from(Sources.files(dir)).pipe(
        Stage.mapEffect((line: string) => Effect.as(Effect.sleep(1), line), { concurrency: 8 }),
        Stage.map((line) => {
          seen++
          return line
        }),
        Stage.writeTo(out)
      )
    const outs = [0, 1, 2].map(() => Sinks.collect<string>({ transactional: true }))
    const options = (parallelism: number, initialSnapshot?: string): JobOptions => ({
      parallelism,
      batchSize: 16,
      processingGuarantee: "exactly-once",
      snapshotInterval: "1 hour",
      snapshotStore: store,
      initialSnapshot
    })
    /** Runs until `seen` passes `upTo`, exports a snapshot as `name` and cancels. */
    const exportAt = (job: Job<any>, upTo: number, name: string) =>
      Effect.gen(function*() {
        while (seen < upTo) yield* Effect.sleep(5)
        yield* job.exportSnapshot(name)
        yield* job.cancel
      })
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      yield* exportAt(yield* Tributary.submit(pipeline(outs[0]!), options(3)), 800, "at-3")
      yield* exportAt(yield* Tributary.submit(pipeline(outs[1]!), options(2, "at-3")), 1800, "at-2")
      const last = yield* Tributary.submit(pipeline(outs[2]!), options(5, "at-2"))
      yield* last.join
    })).pipe(Effect.provide(NodeFileSystem.layer)))
    // Each job committed some of the lines, and together they are the input, each once.
    for (const out of outs) expect(out.items.length).toBeGreaterThan(0)
    const all = outs.flatMap((o) => o.items).sort()
    const expected = Array.from({ length: FILES * LINES }, (_, i) => `${Math.floor(i / LINES)}-${i % LINES}`).sort()
    expect(all).toEqual(expected)
  })

  it("a source without splits still keeps its number of instances across a snapshot", async () => {
    const store = SnapshotStore.memory()
    const pipeline = Pipeline.from(Sources.generator({ make: (seq) => seq, itemsPerSecond: 5000 })).pipe(Stage.writeTo(Sinks.collect<number>()))
    const error = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(pipeline, { parallelism: 2, processingGuarantee: "exactly-once", snapshotInterval: "1 hour", snapshotStore: store })
      yield* Effect.sleep(20)
      yield* job.exportSnapshot("two")
      yield* job.cancel
      return yield* Effect.flip(Tributary.submit(pipeline, { parallelism: 3, processingGuarantee: "exactly-once", snapshotStore: store, initialSnapshot: "two" }))
    })))
    expect(error).toBeInstanceOf(PlanError)
    expect((error as PlanError).message).toMatch(/positions of 2 instances of source "generator", which now has 3: a source without splits keeps its parallelism/)
  })

  it("watching a directory: files that appear later are read, and a crash neither rereads nor skips one", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-watch-"))
    /**
     * A file appears whole: written under a hidden name, then renamed into the directory. Later
     * files sort first, so a new one shifts the others in the listing.
     */
    const appear = (f: number) => {
      const name = `w${String(99 - f).padStart(2, "0")}.txt`
      fs.writeFileSync(path.join(dir, `.${name}`), Array.from({ length: 50 }, (_, l) => `${f}-${l}\n`).join(""))
      fs.renameSync(path.join(dir, `.${name}`), path.join(dir, name))
    }
    appear(0)
    const out = Sinks.collect<string>({ transactional: true })
    let calls = 0
    const pipeline = Pipeline.from(Sources.files(dir, { watch: "20 millis" })).pipe(
      Stage.map((line: string) => {
        if (++calls === 260) throw new Error("a crash once several files were read")
        return line
      }),
      Stage.writeTo(out)
    )
    const expected = Array.from({ length: 10 * 50 }, (_, i) => `${Math.floor(i / 50)}-${i % 50}`).sort()
    const restarts = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(pipeline, { parallelism: 2, processingGuarantee: "exactly-once", snapshotInterval: "10 millis" })
      for (let f = 1; f < 10; f++) {
        yield* Effect.sleep(40)
        appear(f)
      }
      for (let waited = 0; out.items.length < expected.length; waited += 10) {
        if (waited > 10_000) break
        yield* Effect.sleep(10)
      }
      const { restarts } = yield* job.metrics
      yield* job.cancel
      return restarts
    })).pipe(Effect.provide(NodeFileSystem.layer)))
    expect(restarts).toBe(1)
    expect([...out.items].sort()).toEqual(expected)
  })
})
