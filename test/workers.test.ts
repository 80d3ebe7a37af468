/**
 * `Workers.run`: one script using every core — this process and copies of it
 * (real OS processes, started with this runtime) run one job.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runtimeArgs } from "./cluster-helpers.ts"
import { countWordsByHand } from "./helpers.ts"

const fixtures = path.join(import.meta.dirname, "fixtures")
const dataDir = path.resolve(import.meta.dirname, "..", "examples", "data")

/** Runs a fixture script to its end: what it printed. */
const runScript = (script: string, ...args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [...runtimeArgs, path.join(fixtures, script), ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

describe("Workers.run", () => {
  it("a word count over this process and a copy of the script: exact counts in this process, both processes read input", async () => {
    const { code, stdout, stderr } = await runScript("workers-word-count.ts", dataDir, "2")
    expect(code, stderr).toBe(0)
    const lines = stdout.trim().split("\n")
    // What the script does outside its job happens once: the copy keeps quiet and exits with the job.
    expect(lines.filter((l) => l === "starting")).toHaveLength(1)
    const result = JSON.parse(lines.at(-1)!) as { pid: number; counts: Record<string, number>; linesRead: Record<string, number> }
    expect(new Map(Object.entries(result.counts))).toEqual(countWordsByHand(dataDir))
    const readers = Object.keys(result.linesRead).map(Number)
    expect(readers).toHaveLength(2)
    expect(readers).toContain(result.pid)
    const allLines = fs.readdirSync(dataDir).reduce((n, f) => n + fs.readFileSync(path.join(dataDir, f), "utf8").replace(/\n$/, "").split("\n").length, 0)
    expect(Object.values(result.linesRead).reduce((a, b) => a + b, 0)).toBe(allLines)
  })

  it("a copy SIGKILLed mid-job: the job goes on without it and the exactly-once sums are exact", async () => {
    const count = 30_000
    const { code, stdout, stderr } = await runScript("workers-recovery.ts", String(count))
    expect(code, stderr).toBe(0)
    // The coordinator's log says so.
    expect(stdout + stderr).toMatch(/restarting from the last snapshot/)
    const results = JSON.parse(stdout.trim().split("\n").at(-1)!) as Array<[number, number, number]>
    const expected = Array.from({ length: 7 }, (_, key) => [key, 0, 0])
    for (let n = 0; n < count; n++) {
      expected[n % 7]![1] += n
      expected[n % 7]![2] += 1
    }
    expect(results.sort((a, b) => a[0] - b[0])).toEqual(expected)
  })

  it("a process without a script file to copy (a REPL, -e code) gets a typed error saying so", async () => {
    const { code, stdout, stderr } = await runScript("workers-no-script.ts")
    expect(code, stderr).toBe(0)
    expect(stdout.trim()).toBe(`ProcessError: Workers.run: the copies need a script file to run, and this process has none ("[eval]")`)
  })
})
