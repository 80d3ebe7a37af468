/** The progress line and summary of `Tributary.run` on a terminal (a pseudo-terminal made by `script`), and none in a pipe. */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Progress } from "../core/src/index.ts"

const root = path.resolve(import.meta.dirname, "..")
const fixture = "test/fixtures/progress.ts"
const node = [process.execPath, "--conditions=source"]

describe.skipIf("Bun" in globalThis || "Deno" in globalThis || !fs.existsSync("/usr/bin/script"))("progress of a bounded job", () => {
  it("on a terminal: a bar that reaches 100 %, then the summary", () => {
    const printed = execFileSync("/usr/bin/script", ["-qec", [...node, fixture].join(" "), "/dev/null"], { cwd: root, encoding: "utf8" })
    const lines = printed.split(/[\r\n]+/).map((l) => l.replace(/\x1b\[K/g, "")).filter((l) => l.length > 0)
    const bars = lines.filter((l) => l.startsWith("["))
    expect(bars.length).toBeGreaterThan(1)
    expect(bars.at(-1)).toMatch(/^\[█{30}\] 100% 200\.0k records read/)
    // Percentages only grow.
    const percents = bars.map((l) => Number(l.match(/\] (\d+)%/)![1]))
    expect(percents).toEqual([...percents].sort((a, b) => a - b))
    expect(lines).toContainEqual(expect.stringMatching(/^job "progress-demo" completed in [\d.]+ s: 200000 records read, 200000 written, 0 late events, 0 dead letters$/))
  })

  it("in a pipe: neither progress nor summary, only what the program prints", () => {
    const run = spawnSync(node[0]!, [...node.slice(1), fixture], { cwd: root, encoding: "utf8" })
    expect(run.stderr).toBe("")
    expect(JSON.parse(run.stdout)).toEqual({ recordsRead: 200_000 })
  })

  it("a spinner with counts when a source does not know its total", () => {
    const metrics = {
      time: 0,
      restarts: 0,
      snapshots: [],
      exceptions: [],
      instances: [{ source: "s", recordsIn: 12_345, progress: undefined } as any]
    }
    expect(Progress.line(metrics, 1000, 0)).toBe("⠋ 12.3k records read, 12.3k/s, 1.0s")
    expect(Progress.line({ ...metrics, instances: [{ source: "s", recordsIn: 50, progress: { done: 50, total: 200 } }] as any }, 1000, 0))
      .toBe(`[${"█".repeat(8)}${"░".repeat(22)}] 25% 50 records read, 50/s, 1.0s, ETA 3.0s`)
  })
})
