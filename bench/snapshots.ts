/**
 * What fault tolerance costs: the sliding-window job's throughput with
 * exactly-once snapshots every second against no guarantee, and how long a
 * snapshot of 1M keys of state takes end to end (barriers, encoding, store).
 */
import { Effect } from "effect"
import { Pipeline, Sinks, SnapshotStore, Sources, Stage, Tributary } from "../core/src/index.ts"
import type { Benchmark, Measurement } from "./harness.ts"
import { throughput } from "./windowed.ts"

const KEYS = 1_000_000

const snapshotOfMillionKeys = Effect.scoped(Effect.gen(function*() {
  const store = SnapshotStore.memory()
  const job = yield* Tributary.submit(
    Pipeline.from(Sources.generator({ make: (seq) => seq })).pipe(
      Stage.groupingKey((seq) => seq % KEYS),
      Stage.rollingAggregate({ name: "count", create: () => 0, accumulate: (n: number) => n + 1, combine: (a: number, b: number) => a + b, export: (n: number) => n }),
      Stage.filter(() => false),
      Stage.writeTo(Sinks.collect())
    ),
    { name: "million", processingGuarantee: "exactly-once", snapshotInterval: "1 hour", snapshotStore: store }
  )
  // Fill the state: every key seen at least once.
  while (true) {
    const m = yield* job.metrics
    if (m.instances.filter((i) => i.vertex.startsWith("generator")).reduce((n, i) => n + i.recordsIn, 0) > KEYS) break
    yield* Effect.sleep(100)
  }
  const start = performance.now()
  yield* job.exportSnapshot("million-export")
  const ms = performance.now() - start
  const bytes = [...store.raw.get("million")!.values()].flat().reduce((n, frame) => n + frame.length, 0)
  yield* job.cancel
  return { ms, bytes }
}))

export const snapshots: Benchmark = {
  name: "snapshots",
  description: "snapshot overhead (sliding window, exactly-once every 1 s) and a 1M-key snapshot",
  run: async (): Promise<ReadonlyArray<Measurement>> => {
    const none = await Effect.runPromise(throughput(8))
    const exactlyOnce = await Effect.runPromise(throughput(8, { processingGuarantee: "exactly-once", snapshotInterval: "1 second" }))
    const big = await Effect.runPromise(snapshotOfMillionKeys)
    return [
      { benchmark: "snapshots", variant: "sliding window, no guarantee", unit: "events/s", value: none },
      {
        benchmark: "snapshots",
        variant: "sliding window, exactly-once, 1 s snapshots",
        unit: "events/s",
        value: exactlyOnce,
        details: { "vs none": `${((exactlyOnce / none) * 100).toFixed(0)}%` }
      },
      { benchmark: "snapshots", variant: "snapshot of 1M keys", unit: "ms", value: big.ms, details: { MB: big.bytes / 1e6 } }
    ]
  }
}
