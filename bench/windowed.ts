/**
 * Jet's headline streaming setup: a 10 s window sliding by 20 ms, counting
 * events per key over 10k keys. Throughput is measured on an unbounded source
 * in steady state; latency at half that rate, from the moment a window should
 * close (its end + the allowed lag) to the moment its result is emitted.
 */
import { Effect } from "effect"
import { Aggregate, Pipeline, Sink, Sources, Stage, Tributary, Window } from "../core/src/index.ts"
import { type Benchmark, LatencyHistogram } from "./harness.ts"

const KEYS = 10_000
const LAG = 5

interface Ev {
  readonly key: number
  readonly t: number
}

const job = (source: ReturnType<typeof Sources.generator<Ev>>, sink: Sink.Sink<Stage.WindowResult<number, number>>) =>
  Pipeline.from(source).pipe(
    Stage.withTimestamps((e) => e.t, { allowedLag: LAG }),
    Stage.groupingKey((e) => e.key),
    Stage.window(Window.sliding("10 seconds", "20 millis")),
    Stage.aggregate(Aggregate.counting()),
    Stage.writeTo(sink)
  )

/** Events/s of the source over `seconds`, after a warm-up, with event time advancing 1 ms per 1000 events. */
export const throughput = (seconds: number, options?: Tributary.JobOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const discard = Sink.make<unknown>({ name: "discard", open: () => Effect.succeed({ write: () => Effect.void }) })
    const running = yield* Tributary.submit(job(Sources.generator({ make: (seq) => ({ key: seq % KEYS, t: seq / 1000 }) }), discard), options)
    const read = Effect.map(running.metrics, (m) => m.instances.filter((i) => i.vertex.startsWith("generator")).reduce((n, i) => n + i.recordsIn, 0))
    yield* Effect.sleep("2 seconds")
    const before = yield* read
    const start = performance.now()
    yield* Effect.sleep(`${seconds} seconds`)
    const events = (yield* read) - before
    const rate = events / ((performance.now() - start) / 1000)
    yield* running.cancel
    return rate
  }))

/** Latency percentiles of window results at a fixed rate, event time = the time an event is due. */
const latency = (rate: number, seconds: number) =>
  Effect.scoped(Effect.gen(function*() {
    const latencies = new LatencyHistogram()
    let measuring = false
    const record = Sink.make<Stage.WindowResult<number, number>>({
      name: "latency",
      open: () =>
        Effect.succeed({
          write: (batch) =>
            Effect.sync(() => {
              if (!measuring) return
              const now = Date.now()
              for (const r of batch) latencies.record(now - (r.end + LAG))
            })
        })
    })
    // An event's time is when the source should make it: a source behind schedule is latency too.
    const make = (seq: number, due: number) => ({ key: seq % KEYS, t: due })
    const running = yield* Tributary.submit(job(Sources.generator({ make, itemsPerSecond: rate }), record))
    // Steady state: the 10 s windows are full (no more state growing) before measuring.
    yield* Effect.sleep("12 seconds")
    measuring = true
    yield* Effect.sleep(`${seconds} seconds`)
    yield* running.cancel
    return latencies.summary()
  }))

export const windowed: Benchmark = {
  name: "windowed",
  description: "sliding window 10 s / 20 ms, count per key, 10k keys",
  run: async () => {
    const rate = await Effect.runPromise(throughput(8))
    // Metrics sampled 10 times a second against not sampled, in alternating rounds (the machine's drift hits both).
    const sampled: Array<number> = []
    const unsampled: Array<number> = []
    for (let round = 0; round < 2; round++) {
      sampled.push(await Effect.runPromise(throughput(4, { metricsInterval: "100 millis" })))
      unsampled.push(await Effect.runPromise(throughput(4, { metrics: false })))
    }
    const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
    // Latency at half the measured rate, and at 1M events/s: half the 2M events/s target.
    const rates = [Math.round(rate / 2 / 1000) * 1000, 1_000_000]
    const measured = []
    for (const r of rates) measured.push({ r, lat: await Effect.runPromise(latency(r, 8)) })
    return [
      { benchmark: "windowed", variant: "Tributary, max rate", unit: "events/s", value: rate },
      {
        benchmark: "windowed",
        variant: "Tributary, max rate, metrics every 100 ms",
        unit: "events/s",
        value: mean(sampled),
        details: { "vs metrics off": `${((mean(sampled) / mean(unsampled)) * 100).toFixed(1)}%` }
      },
      { benchmark: "windowed", variant: "Tributary, max rate, metrics off", unit: "events/s", value: mean(unsampled) },
      ...measured.map(({ r, lat }) => ({
        benchmark: "windowed",
        variant: `Tributary, latency at ${r} events/s`,
        unit: "ms p99",
        value: lat.p99,
        details: { p50: lat.p50, "p99.9": lat.p999, results: lat.results }
      }))
    ]
  }
}
