/**
 * A local cluster: a job spread over member processes on 127.0.0.1 that
 * exchange batches over links (real OS processes, started with this runtime).
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { LocalCluster } from "../cluster/src/index.ts"
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
