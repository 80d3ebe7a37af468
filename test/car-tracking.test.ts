import { describe, expect, it } from "vitest"
import { Sinks, Sources, Stage } from "../core/src/index.ts"
import { drive, type Velocity, velocities } from "../examples/car-tracking.ts"
import { rng, runJob } from "./helpers.ts"

const cars = [
  { car: "red", vx: 12, vy: 5 },
  { car: "blue", vx: -3.5, vy: 20 },
  { car: "green", vx: 0.25, vy: -7 }
]

describe("car tracking example", () => {
  it.each([1, 2])("recovers each car's velocity from reordered reports, for every window position (parallelism %i)", async (parallelism) => {
    const random = rng(parallelism)
    // Each report delayed by up to 1.9 s: within the example's allowed lag of 2 s.
    const reports = drive(cars, 60).map((p) => ({ p, at: p.time + random() * 1.9 })).sort((a, b) => a.at - b.at).map((r) => r.p)
    const out = Sinks.collect<Velocity>()
    await runJob(velocities(Sources.fromIterable(reports)).pipe(Stage.writeTo(out)), { parallelism, batchSize: 32 })
    for (const { car, vx, vy } of cars) {
      const windows = out.items.filter((v) => v.key === car).sort((a, b) => a.end - b.end)
      // Reports at 0 .. 59.5 s: windows ending 1 s .. 69 s, none skipped.
      expect(windows.map((w) => w.end)).toEqual(Array.from({ length: 69 }, (_, i) => (i + 1) * 1000))
      for (const w of windows) {
        expect(w.end - w.start).toBe(10_000)
        expect(w.isEarly).toBe(false)
        expect(w.value.vx).toBeCloseTo(vx, 6)
        expect(w.value.vy).toBeCloseTo(vy, 6)
      }
    }
  })

  it("recovers the velocities with epoch seconds as time", async () => {
    const epoch = 1_700_000_000
    const reports = drive(cars, 30).map((p) => ({ ...p, time: epoch + p.time }))
    const out = Sinks.collect<Velocity>()
    await runJob(velocities(Sources.fromIterable(reports)).pipe(Stage.writeTo(out)), { parallelism: 2, batchSize: 32 })
    for (const { car, vx, vy } of cars) {
      // Reports over 30 s: windows ending 1 s to 39 s after the first.
      const windows = out.items.filter((v) => v.key === car)
      expect(windows.length).toBe(39)
      for (const w of windows) {
        expect(w.value.vx).toBeCloseTo(vx, 6)
        expect(w.value.vy).toBeCloseTo(vy, 6)
      }
    }
  })
})
