/**
 * NEXMark on one worker and on every core (member processes of a local
 * cluster): events/s per query over a bounded generated stream (generation included, as in Flink's
 * figures), Q1/Q2/Q5 next to a hand-written loop, RxJS and an Effect Stream;
 * the latency of the windowed queries at a fixed rate; peak RSS per query.
 * Writes docs/nexmark.svg.
 */
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { Pipeline, Sink, Sources, Stage, Tributary } from "../../core/src/index.ts"
import { LocalCluster } from "../../cluster/src/index.ts"
import { bestOf, type Benchmark, check, LatencyHistogram, type Measurement, perSecond } from "../harness.ts"
import * as Baseline from "./baselines.ts"
import { batch, type Event, events, resolve, source } from "./generator.ts"
import * as Q from "./queries.ts"

const N = 2_000_000
const PREGENERATED = 1_000_000
const LATENCY_RATE = 200_000

type Query = (events: Stage.Stage<Event>) => Stage.Stage<any, Stage.Unkeyed, never, never, unknown>
const queries: ReadonlyArray<[string, Query]> = [
  ["Q0", Q.q0], ["Q1", Q.q1], ["Q2", Q.q2], ["Q3", Q.q3], ["Q4", Q.q4], ["Q5", Q.q5],
  ["Q7", Q.q7], ["Q8", Q.q8], ["Q11", Q.q11], ["Q12", Q.q12]
]

/** A sink that only counts (and hands each batch to `onBatch`), so the figures measure the query. */
const counter = <A>(onBatch: (batch: ReadonlyArray<A>) => void = () => {}) => {
  const state = { count: 0 }
  const sink = Sink.make<A>({
    name: "count",
    open: () =>
      Effect.succeed({
        write: (batch) =>
          Effect.sync(() => {
            state.count += batch.length
            onBatch(batch)
          })
      })
  })
  return { sink, state }
}

/** Highest RSS seen while `body` runs (sampled every 20 ms, and at its end). */
const peakRss = async <T>(body: () => Promise<T>): Promise<[T, number]> => {
  let peak = process.memoryUsage().rss
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20)
  try {
    const result = await body()
    return [result, Math.max(peak, process.memoryUsage().rss)]
  } finally {
    clearInterval(timer)
  }
}

const memberJobs = new URL("./members.ts", import.meta.url).pathname

/** Seconds to run query `name` over `count` events on `members` processes (start-up included). */
const clusterSeconds = async (name: string, count: number, members: number) => {
  process.env.NEXMARK_COUNT = String(count)
  const start = performance.now()
  await Effect.runPromise(LocalCluster.run({ module: memberJobs, export: name, members }))
  return (performance.now() - start) / 1000
}

const runQuery = async (query: Query, pregenerated?: ReadonlyArray<Event>) => {
  const { sink, state } = counter()
  const events = pregenerated ? Sources.fromIterable(pregenerated) : source({ count: N })
  await Effect.runPromise(Tributary.run(query(Pipeline.from(events)).pipe(Stage.writeTo(sink))))
  return state.count
}

/**
 * Latency of a windowed query, alone, at a fixed rate with event time = the
 * time an event is due: per result, the time from the moment its window should
 * close (end + lag; Q12's processing-time windows have none) to its emission.
 * The first 2 s are not measured; a run lasts long enough for 10 s windows to close.
 */
const latency = (query: Query, lag: number, seconds: number) =>
  Effect.scoped(Effect.gen(function*() {
    const latencies = new LatencyHistogram()
    let measuring = false
    const { sink } = counter<{ readonly end: number }>((batch) => {
      if (!measuring) return
      const now = Date.now()
      for (const r of batch) latencies.record(now - (r.end + lag))
    })
    const live = Pipeline.from(source({ eventsPerSecond: LATENCY_RATE, realTime: true, baseTime: Date.now() }))
    const job = yield* Tributary.submit(query(live).pipe(Stage.writeTo(sink)))
    yield* Effect.sleep("2 seconds")
    measuring = true
    yield* Effect.sleep(`${seconds - 2} seconds`)
    yield* job.cancel
    return latencies.summary()
  }))

const windowed: ReadonlyArray<[string, Query, number, number]> = [
  ["Q5", Q.q5, Q.LAG, 12], ["Q7", Q.q7, Q.LAG, 16], ["Q8", Q.q8, Q.LAG, 16], ["Q11", Q.q11, Q.LAG, 20], ["Q12", Q.q12, 0, 12]
]

/** Horizontal bars, one per figure, grouped by query. */
const chart = (rows: ReadonlyArray<{ label: string; value: number; color: string }>) => {
  const max = Math.max(...rows.map((r) => r.value))
  const height = 22
  const width = 560
  const bars = rows.map((r, i) => {
    const y = 30 + i * height
    const w = Math.max(1, (r.value / max) * width)
    return `<text x="190" y="${y + 14}" text-anchor="end">${r.label}</text>` +
      `<rect x="200" y="${y + 2}" width="${w.toFixed(1)}" height="${height - 6}" fill="${r.color}"/>` +
      `<text x="${(205 + w).toFixed(1)}" y="${y + 14}">${(r.value / 1e6).toFixed(2)} M/s</text>`
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" width="880" height="${40 + rows.length * height}" font-family="sans-serif" font-size="12">` +
    `<text x="10" y="18" font-weight="bold">NEXMark events/s, one core (generation included)</text>${bars.join("")}</svg>\n`
}

const COLORS: Record<string, string> = { Tributary: "#2f6fb3", "hand-written loop": "#888", RxJS: "#b3472f", "Effect Stream": "#6a9f3a" }

export const nexmark: Benchmark = {
  name: "nexmark",
  description: "NEXMark Q0–Q12 on one worker, next to a loop, RxJS and Effect Stream",
  run: async () => {
    const results: Array<Measurement> = []
    const c = resolve({ count: N })
    const generatorOnly = perSecond(N, await bestOf(2, () => {
      for (let p = 0; p < N; p += 1024) batch(c, p, 1, Math.min(N, p + 1024))
    }))
    results.push({ benchmark: "nexmark", variant: "generator alone", unit: "events/s", value: generatorOnly })
    const tributary = new Map<string, number>()
    let peak = 0
    for (const [name, query] of queries) {
      const [rate, rss] = await peakRss(async () => perSecond(N, await bestOf(2, async () => void (await runQuery(query)))))
      peak = Math.max(peak, rss)
      tributary.set(name, rate)
      results.push({ benchmark: "nexmark", variant: `${name} Tributary`, unit: "events/s", value: rate, details: { "peak RSS MB": rss / 1e6 } })
    }
    // Every core: each query over member processes (LocalCluster). The rate counts the start-up:
    // one measured in another run and subtracted can exceed this run's on a loaded machine.
    const members = navigator.hardwareConcurrency
    const startUp = await clusterSeconds("Q0", members, members)
    for (const [name] of queries) {
      const count = name === "Q0" || name === "Q1" || name === "Q2" || name === "Q3" ? 8 * N : 2 * N
      const rate = perSecond(count, (await clusterSeconds(name, count, members)) * 1000)
      results.push({
        benchmark: "nexmark",
        variant: `${name} Tributary, ${members} member processes, start-up included`,
        unit: "events/s",
        value: rate,
        details: { "vs one worker": `${(rate / tributary.get(name)!).toFixed(2)}×`, "start-up s (a Q0 run of no work)": startUp }
      })
    }
    const bars: Array<{ label: string; value: number; color: string }> = queries.map(([name]) => ({
      label: `${name} Tributary`, value: tributary.get(name)!, color: COLORS.Tributary!
    }))
    for (const query of ["Q1", "Q2", "Q5"] as const) {
      const expected = Baseline.loop(c, query)
      check(`${query} Tributary results`, await runQuery(queries.find(([n]) => n === query)![1]), expected)
      const variants: Array<[string, () => Promise<number> | number]> = [
        ["hand-written loop", () => Baseline.loop(c, query)],
        ["RxJS", () => Baseline.rx(c, query)],
        ["Effect Stream", () => Baseline.stream(c, query)]
      ]
      const loopRate = perSecond(N, await bestOf(2, () => void Baseline.loop(c, query)))
      for (const [variant, body] of variants) {
        check(`${query} ${variant} results`, await body(), expected)
        const rate = variant === "hand-written loop" ? loopRate : perSecond(N, await bestOf(2, async () => void (await body())))
        results.push({
          benchmark: "nexmark",
          variant: `${query} ${variant}`,
          unit: "events/s",
          value: rate,
          details: { "Tributary ×": (tributary.get(query)! / rate).toFixed(2), "vs loop": `${((rate / loopRate) * 100).toFixed(0)}%` }
        })
        bars.push({ label: `${query} ${variant}`, value: rate, color: COLORS[variant]! })
      }
    }
    // The same three over events generated beforehand: the frameworks' own cost, without generation.
    const pregenerated = events({ count: PREGENERATED })
    const p = resolve({ count: PREGENERATED })
    for (const query of ["Q1", "Q2", "Q5"] as const) {
      const expected = Baseline.loop(p, query, pregenerated)
      const variants: Array<[string, () => Promise<number> | number]> = [
        ["hand-written loop", () => Baseline.loop(p, query, pregenerated)],
        ["Tributary", () => runQuery(queries.find(([n]) => n === query)![1], pregenerated)],
        ["RxJS", () => Baseline.rx(p, query, pregenerated)],
        ["Effect Stream", () => Baseline.stream(p, query, pregenerated)]
      ]
      let loopRate = 0
      for (const [variant, body] of variants) {
        check(`${query} ${variant} results (pregenerated)`, await body(), expected)
        const rate = perSecond(PREGENERATED, await bestOf(2, async () => void (await body())))
        if (variant === "hand-written loop") loopRate = rate
        results.push({
          benchmark: "nexmark",
          variant: `${query} ${variant}, pregenerated events`,
          unit: "events/s",
          value: rate,
          details: { "vs loop": `${((rate / loopRate) * 100).toFixed(0)}%` }
        })
      }
    }
    bars.sort((a, b) => Number(a.label.slice(1, a.label.indexOf(" "))) - Number(b.label.slice(1, b.label.indexOf(" "))))
    writeFileSync(new URL("../../docs/nexmark.svg", import.meta.url), chart(bars))
    for (const [name, query, lag, seconds] of windowed) {
      const [l, rss] = await peakRss(() => Effect.runPromise(latency(query, lag, seconds)))
      peak = Math.max(peak, rss)
      results.push({
        benchmark: "nexmark",
        variant: `${name} latency at ${LATENCY_RATE / 1000}k events/s`,
        unit: "ms p99",
        value: l.p99,
        details: { p50: l.p50, "p99.9": l.p999, results: l.results, "peak RSS MB": rss / 1e6 }
      })
    }
    results.push({ benchmark: "nexmark", variant: "peak RSS, whole run", unit: "MB", value: peak / 1e6 })
    return results
  }
}
