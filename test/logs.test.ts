/** The job's log options: a level and JSON lines, applied to the job's fibers with their annotations. */
import { Effect } from "effect"
import { afterEach, describe, expect, it, vi } from "vitest"
import { Pipeline, Sinks, Sources, Stage, Tributary } from "../core/src/index.ts"

const captured = () => {
  const lines: Array<unknown> = []
  for (const method of ["log", "info", "warn", "error", "debug", "trace"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: Array<unknown>) => void lines.push(args.length === 1 ? args[0] : args))
  }
  return lines
}
afterEach(() => vi.restoreAllMocks())

const chatty = Pipeline.from(Sources.fromIterable([1, 2])).pipe(
  Stage.mapEffect((n: number) => Effect.as(Effect.andThen(Effect.logInfo(`info ${n}`), Effect.logWarning(`warning ${n}`)), n)),
  Stage.writeTo(Sinks.collect())
)

describe("job logs", () => {
  it("logLevel: only what is at or above it", async () => {
    const lines = captured()
    await Effect.runPromise(Tributary.run(chatty, { name: "leveled", logLevel: "Warn" }))
    const text = lines.map(String).join("\n")
    expect(text).toContain("warning 1")
    expect(text).toContain("warning 2")
    expect(text).not.toContain("info 1")
  })

  it("logFormat json: a JSON object a line, with the job, vertex and instance", async () => {
    const lines = captured()
    await Effect.runPromise(Tributary.run(chatty, { name: "jsonl", logFormat: "json" }))
    const records = lines.map((l) => JSON.parse(String(l)))
    const warnings = records.filter((r) => String(r.message).startsWith("warning"))
    expect(warnings.length).toBe(2)
    expect(warnings[0]).toMatchObject({ level: "WARN", annotations: { job: "jsonl", instance: 0 } })
    expect(String(warnings[0].annotations.vertex)).toContain("mapEffect")
    expect(records.some((r) => r.message === "info 1" || String(r.message).includes("info 1"))).toBe(true)
  })
})
