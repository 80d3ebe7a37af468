import { describe, expect, it } from "vitest"
import { perSecond, report } from "../bench/harness.ts"

describe("benchmark harness", () => {
  it("a rate that cannot be right is an error, not a row", () => {
    expect(perSecond(2000, 1000)).toBe(2000)
    expect(() => perSecond(8_000_000, -165)).toThrow(RangeError)
    expect(() => perSecond(1, 0)).toThrow(RangeError)
  })

  it("in JSON mode, stdout holds the document alone and log lines go to stderr", async () => {
    const out: Array<string> = []
    const err: Array<string> = []
    const { stdout, stderr } = process
    const [write, writeErr] = [stdout.write, stderr.write]
    stdout.write = ((s: string) => out.push(s) > 0) as typeof stdout.write
    stderr.write = ((s: string) => err.push(s) > 0) as typeof stderr.write
    try {
      await report([{
        name: "logs",
        description: "prints like a member process",
        run: async () => {
          process.stdout.write("timestamp=… level=INFO message=member 1 joined\n") // as a member's line is passed on
          return [{ benchmark: "logs", variant: "one", unit: "events/s", value: 1 }]
        }
      }], true, { runtime: "node" })
    } finally {
      stdout.write = write
      stderr.write = writeErr
    }
    expect(JSON.parse(out.join("")).results).toEqual([{ benchmark: "logs", variant: "one", unit: "events/s", value: 1 }])
    expect(err.join("")).toContain("member 1 joined")
  })
})
