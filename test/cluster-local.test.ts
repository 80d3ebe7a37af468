/**
 * A local cluster: a job spread over member processes on 127.0.0.1 that
 * exchange batches over links (real OS processes, started with this runtime).
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { LocalCluster } from "../cluster/src/index.ts"
import { RestartPolicy } from "../core/src/index.ts"
import { committedLines, expectEachRecordOnce, expectExactOutput, expectedWindows, runtimeArgs } from "./cluster-helpers.ts"
import { countWordsByHand } from "./helpers.ts"

const jobs = path.join(import.meta.dirname, "fixtures", "cluster-jobs.ts")
const dataDir = path.resolve(import.meta.dirname, "..", "examples", "data")

describe("local cluster", () => {
  it("a word count over 2 member processes gives exactly the counts of the input, each word once", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-cluster-"))
    process.env.WORDS_DIR = dataDir
    process.env.OUT_DIR = out
    await Effect.runPromise(LocalCluster.run({ module: jobs, export: "wordCount", members: 2 }))
    const parts = fs.readdirSync(out).filter((f) => f.startsWith("part-"))
    // Each member wrote the part of its own sink instance.
    expect(parts.sort()).toEqual(["part-00000", "part-00001"])
    const lines = parts.flatMap((p) => fs.readFileSync(path.join(out, p), "utf8").split("\n").filter((l) => l.length > 0))
    const counts = new Map(lines.map((l) => [l.split("\t")[0]!, Number(l.split("\t")[1])]))
    expect(counts.size).toBe(lines.length)
    expect(counts).toEqual(countWordsByHand(dataDir))
  })

  it("a member killed with SIGKILL mid-job fails the job promptly, naming the member", async () => {
    const started = Date.now()
    const error = await Effect.runPromise(Effect.flip(LocalCluster.run({ module: jobs, export: "dying", members: 2 })))
    expect(error._tag).toBe("MemberError")
    expect(error.message).toMatch(/member 1: exited \(SIGKILL\)/)
    expect(Date.now() - started).toBeLessThan(20_000)
  })
})

const streamingRun = (
  options: Partial<LocalCluster.LocalClusterOptions>,
  during: (job: LocalCluster.ClusterJob) => Effect.Effect<void, unknown>
) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-cluster-"))
  process.env.OUT_DIR = out
  return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const job = yield* LocalCluster.start({ module: jobs, export: "streaming", snapshotInterval: "300 millis", ...options })
    yield* during(job)
    yield* job.join
    return { out, status: yield* job.status }
  })))
}

/** Waits until the job has completed `n` snapshots. */
const snapshotsDone = (job: LocalCluster.ClusterJob, n: number) =>
  Effect.repeat(Effect.sleep("20 millis"), { until: () => Effect.runSync(job.status).snapshot >= n })

describe("local cluster with a processing guarantee", () => {
  it("recovers from a member killed with SIGKILL: the job goes on on the others, each record once, every window exact", async () => {
    const { out, status } = await streamingRun({ members: 3, processingGuarantee: "exactly-once" }, (job) =>
      Effect.gen(function*() {
        yield* snapshotsDone(job, 2)
        process.kill((yield* job.status).members[1]!.pid!, "SIGKILL")
      }))
    expect(status.restarts).toBe(1)
    expect(status.execution).toBe(2)
    expect(status.members.map((m) => m.state)).toEqual(["active", "dead", "active"])
    expectExactOutput(out)
  })
})

describe("local cluster, two sinks at the same default name", () => {
  it("a member killed so that fewer members than source instances are left: snapshots still complete, each sink gets each record once", async () => {
    const { out, status } = await streamingRun({ export: "twinSinks", members: 3, processingGuarantee: "exactly-once" }, (job) =>
      Effect.gen(function*() {
        yield* snapshotsDone(job, 2)
        process.kill((yield* job.status).members[1]!.pid!, "SIGKILL")
        // Snapshots go on completing with the source's three instances on two members.
        const after = (yield* job.status).snapshot
        yield* snapshotsDone(job, after + 2)
      }))
    expect(status.restarts).toBe(1)
    expectEachRecordOnce(committedLines(path.join(out, "a")))
    expectEachRecordOnce(committedLines(path.join(out, "b")))
  })
})

describe("local cluster restart policy", () => {
  /** Members 1 and then 2 killed with SIGKILL, more than a second apart. */
  const twoDeaths = (restartPolicy: RestartPolicy.RestartPolicy) =>
    streamingRun({ members: 3, processingGuarantee: "exactly-once", restartPolicy }, (job) =>
      Effect.gen(function*() {
        yield* snapshotsDone(job, 2)
        process.kill((yield* job.status).members[1]!.pid!, "SIGKILL")
        yield* Effect.sleep("1200 millis")
        process.kill((yield* job.status).members[2]!.pid!, "SIGKILL")
      }))

  it("failures further apart than the interval restart the job however many", async () => {
    const { out, status } = await twoDeaths(RestartPolicy.failureRate(1, "1 second"))
    expect(status.restarts).toBe(2)
    expectExactOutput(out)
  })

  it("one more failure than maxFailures within the interval fails the job", async () => {
    await expect(twoDeaths(RestartPolicy.failureRate(1, "1 minute"))).rejects.toThrow(/member 2: exited \(SIGKILL\)/)
  })
})

describe("local cluster membership changes", () => {
  it("uses a member that joins: the job is rescaled onto it from a terminal snapshot, and the output stays exact", async () => {
    const { out, status } = await streamingRun({ members: 3, processingGuarantee: "exactly-once", scaleUpDelay: "100 millis" }, (job) =>
      Effect.gen(function*() {
        yield* snapshotsDone(job, 1)
        expect(yield* job.addMember).toBe(3)
      }))
    expect(status.execution).toBe(2)
    expect(status.restarts).toBe(0)
    expect(status.members.map((m) => m.state)).toEqual(["active", "active", "active", "active"])
    expectExactOutput(out)
    // Keyed instance 3, on the new member, produced windows.
    const part3 = fs.readdirSync(path.join(out, "windows")).filter((f) => f.startsWith("part-00003"))
    expect(part3.length).toBeGreaterThan(0)
  })

  it("a source of splits follows the members: a joining member reads files too, and each line is written once", async () => {
    const words = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-cluster-words-"))
    for (let f = 0; f < 16; f++) fs.writeFileSync(path.join(words, `f${f}.txt`), Array.from({ length: 500 }, (_, l) => `${f}-${l}\n`).join(""))
    process.env.WORDS_DIR = words
    const { out, status } = await streamingRun({ export: "fileLines", members: 2, processingGuarantee: "exactly-once", scaleUpDelay: "100 millis" }, (job) =>
      Effect.gen(function*() {
        yield* snapshotsDone(job, 1)
        expect(yield* job.addMember).toBe(2)
      }))
    expect(status.execution).toBe(2)
    const lines = committedLines(path.join(out, "lines")).sort()
    expect(lines).toEqual(Array.from({ length: 16 * 500 }, (_, i) => `${Math.floor(i / 500)}-${i % 500}`).sort())
    // The third member read files: its source instance wrote lines into its own part.
    expect(fs.readdirSync(path.join(out, "lines")).some((f) => f.startsWith("part-00002"))).toBe(true)
  })

  it("a member shut down gracefully leaves after a terminal snapshot: no duplicates even with at-least-once", async () => {
    const { out, status } = await streamingRun({ export: "appended", members: 3, processingGuarantee: "at-least-once" }, (job) =>
      Effect.gen(function*() {
        yield* snapshotsDone(job, 2)
        yield* job.shutdownMember(1)
        expect((yield* job.status).members.map((m) => m.state)).toEqual(["active", "left", "active"])
      }))
    expect(status.execution).toBe(2)
    expect(status.restarts).toBe(0)
    const appended = fs.readdirSync(out).filter((f) => f.startsWith("appended-")).flatMap((f) =>
      fs.readFileSync(path.join(out, f), "utf8").split("\n").filter((l) => l.length > 0))
    expectEachRecordOnce(appended)
    expect(committedLines(path.join(out, "windows")).sort()).toEqual(expectedWindows())
  })

  it("refuses membership changes without a processing guarantee", async () => {
    const error = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* LocalCluster.start({ module: jobs, export: "wordCount", members: 1 })
      return yield* Effect.flip(job.addMember)
    })))
    expect(error.message).toMatch(/needs a processing guarantee/)
  })
})

describe("local cluster coordinator", () => {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }

  it("members whose coordinator process was killed with SIGKILL exit by themselves", async () => {
    process.env.OUT_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-cluster-"))
    const coordinator = spawn(process.execPath, [...runtimeArgs, path.join(import.meta.dirname, "fixtures", "cluster-coordinator.ts")], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    const pids = await new Promise<Array<number>>((resolve) => {
      let out = ""
      coordinator.stdout!.on("data", (data) => {
        out += String(data)
        if (out.includes("]")) resolve(JSON.parse(out.slice(out.indexOf("["), out.indexOf("]") + 1)))
      })
    })
    expect(pids.length).toBe(2)
    expect(pids.every(alive)).toBe(true)
    coordinator.kill("SIGKILL")
    const started = Date.now()
    while (pids.some(alive) && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 50))
    expect(pids.filter(alive)).toEqual([])
  })
})
