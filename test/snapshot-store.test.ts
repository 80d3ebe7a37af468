import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Pipeline, Platform, Sinks, Sources, Stage, Tributary } from "../core/src/index.ts"
import { crc32, decode, encode, packState, type Snapshot, SnapshotError, type StateData, unpackState } from "../core/src/snapshot/Snapshot.ts"
import * as SnapshotStore from "../core/src/snapshot/SnapshotStore.ts"

const state: StateData = { keyed: [[["open", 20], ["k", 7], [new Map([[1, new Set(["x"])]]), undefined]]], local: [NaN] }

const snapshot = (id: number): Snapshot => ({
  job: "job/1",
  id,
  ended: [],
  steps: [{ stage: "v", instance: 0, chunks: packState(state) }],
  positions: [["src", 0, id * 100]]
})

const run = <A, E>(effect: Effect.Effect<A, E, any>) => Effect.runPromise(effect.pipe(Effect.provide(Platform.layer)) as Effect.Effect<A, E>)

const size = (frames: ReadonlyArray<Uint8Array>) => frames.reduce((n, f) => n + f.length, 0)

describe("snapshot encoding", () => {
  it("round-trips state with Maps, Sets and NaN, compactly", () => {
    const frames = encode(snapshot(3))
    const back = decode("job/1", frames)
    expect({ ...back, steps: [] }).toEqual({ ...snapshot(3), steps: [] })
    expect(unpackState(back.steps[0]!.chunks)).toEqual(state)
    expect(size(frames)).toBeLessThan(JSON.stringify(snapshot(3)).length + 64)
  })

  it("writes large keyed state as many bounded chunks, each its own frame, and reads it back whole", () => {
    const keys = Array.from({ length: 100_000 }, (_, i) => i)
    const values = keys.map((k) => ({ count: k * 2 }))
    const big: Snapshot = { ...snapshot(1), steps: [{ stage: "agg", instance: 0, chunks: packState({ keyed: [[undefined, keys, values]], local: [] }) }] }
    const frames = encode(big)
    expect(frames.length).toBeGreaterThan(3)
    expect(Math.max(...frames.map((f) => f.length))).toBeLessThan(size(frames) / 2)
    const back = unpackState(decode("job/1", frames).steps[0]!.chunks)
    expect(back.keyed.flatMap(([, k]) => k)).toEqual(keys)
    expect(back.keyed.flatMap(([, , v]) => v)).toEqual(values)
  })

  it("checksums with the standard CRC-32 (check value of \"123456789\", any length)", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926)
    expect(crc32(new TextEncoder().encode("The quick brown fox jumps over the lazy dog"))).toBe(0x414fa339)
    expect(crc32(new Uint8Array(0))).toBe(0)
  })

  it("detects a flipped byte, a truncated frame and a missing frame", () => {
    const frames = encode(snapshot(3))
    const last = frames.at(-1)!
    const flipped = last.slice()
    flipped[last.length - 3]! ^= 0x40
    expect(() => decode("job/1", [...frames.slice(0, -1), flipped])).toThrow(/checksum/)
    expect(() => decode("job/1", [...frames.slice(0, -1), last.subarray(0, last.length - 5)])).toThrow(/truncated/)
    expect(() => decode("job/1", frames.slice(0, -1))).toThrow(/truncated: \d+ of \d+ frames/)
    expect(() => decode("job/1", [new Uint8Array(3)])).toThrow(SnapshotError)
  })
})

describe.each([
  ["memory", () => SnapshotStore.memory()],
  ["directory", () => SnapshotStore.directory(fs.mkdtempSync(path.join(os.tmpdir(), "tributary-snap-")))]
])("%s store", (_, make) => {
  it("returns the newest snapshot and prunes older ones", async () => {
    const store = make()
    expect(await run(SnapshotStore.latest(store, "job/1"))).toBeUndefined()
    await run(store.save(snapshot(1)))
    await run(store.save(snapshot(2)))
    expect((await run(SnapshotStore.latest(store, "job/1")))?.id).toBe(2)
    await run(SnapshotStore.prune(store, "job/1", 1))
    await run(store.save({ ...snapshot(1), job: "other" }))
    expect((await run(SnapshotStore.latest(store, "job/1")))?.id).toBe(2)
    expect((await run(SnapshotStore.latest(store, "other")))?.id).toBe(1)
  })
})

describe("directory store", () => {
  it("never restores a corrupt or partial snapshot: it falls back to the previous one", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-snap-"))
    const store = SnapshotStore.directory(dir)
    await run(store.save(snapshot(1)))
    await run(store.save(snapshot(2)))
    const newest = fs.readdirSync(dir).filter((f) => f.endsWith(".snapshot")).sort().at(-1)!
    const file = path.join(dir, newest)
    const bytes = fs.readFileSync(file)
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10))
    expect((await run(SnapshotStore.latest(store, "job/1")))?.id).toBe(1)
    // A temp file left by a crash mid-write is not a snapshot.
    fs.writeFileSync(path.join(dir, `${newest}.tmp`), "partial")
    expect((await run(SnapshotStore.latest(store, "job/1")))?.id).toBe(1)
    expect(fs.readdirSync(dir).some((f) => f.endsWith(".tmp"))).toBe(true)
  })
})

describe("snapshot store as a service", () => {
  it("jobs keep their snapshots in the store provided as a layer", async () => {
    const store = SnapshotStore.memory()
    const out = Sinks.collect<number>()
    await Effect.runPromise(
      Tributary.run(
        Pipeline.from(Sources.generator({ make: (i) => i, count: 3000, itemsPerSecond: 20_000 })).pipe(Stage.writeTo(out)),
        { name: "layered", processingGuarantee: "exactly-once", snapshotInterval: "20 millis" }
      ).pipe(Effect.provide(SnapshotStore.layer(store)))
    )
    expect(out.items.length).toBe(3000)
    const kept = decode("layered", [...store.raw.get("layered")!.values()].at(-1)!)
    expect(kept.positions[0]?.[2]).toBeGreaterThan(0)
  })
})
