/** The benchmark registry and timing helpers shared by every benchmark. */

export interface Measurement {
  readonly benchmark: string
  readonly variant: string
  readonly unit: string
  readonly value: number
  /** Free-form extras (latency percentiles, ratios, ...). */
  readonly details?: Record<string, number | string>
}

export interface Benchmark {
  readonly name: string
  readonly description: string
  readonly run: () => Promise<ReadonlyArray<Measurement>>
}

/** Best of `runs` timed runs after one warm-up: the least disturbed by the machine's noise. */
export const bestOf = async (runs: number, body: () => Promise<void> | void): Promise<number> => {
  await body()
  let best = Infinity
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    await body()
    best = Math.min(best, performance.now() - start)
  }
  return best
}

/** Records per second for `count` records in `ms` milliseconds: a rate that cannot be right is an error, not a row. */
export const perSecond = (count: number, ms: number) => {
  const rate = (count / ms) * 1000
  if (!(rate > 0 && Number.isFinite(rate))) throw new RangeError(`${count} records in ${ms} ms is not a rate`)
  return rate
}

/**
 * Latencies in whole milliseconds (0 to 60 s), counted per millisecond: recording
 * allocates nothing, so measuring does not add garbage (and GC pauses) to the
 * system it measures, however many results there are.
 */
export class LatencyHistogram {
  private readonly counts = new Float64Array(60_001)
  count = 0

  record(ms: number): void {
    this.counts[Math.min(60_000, Math.max(0, Math.round(ms)))]!++
    this.count++
  }

  /** The smallest latency that at least `p` percent of the recorded ones do not exceed. */
  percentile(p: number): number {
    const rank = Math.max(1, Math.ceil((p / 100) * this.count))
    let seen = 0
    for (let ms = 0; ms < this.counts.length; ms++) {
      seen += this.counts[ms]!
      if (seen >= rank) return ms
    }
    return NaN
  }

  summary() {
    return { p50: this.percentile(50), p99: this.percentile(99), p999: this.percentile(99.9), results: this.count }
  }
}

export const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

export const check = (what: string, actual: unknown, expected: unknown) => {
  if (actual !== expected) throw new Error(`${what}: got ${String(actual)}, expected ${String(expected)}`)
}

/**
 * Runs `benchmarks` and prints a table, or with `json` one JSON document. The
 * document alone goes to stdout: whatever else a run prints there (the
 * logger, the log lines of member processes) goes to stderr meanwhile.
 */
export const report = async (benchmarks: ReadonlyArray<Benchmark>, json: boolean, machine: Record<string, unknown>) => {
  const stdout = process.stdout.write.bind(process.stdout)
  const format = (m: Measurement) => {
    const value = m.unit.endsWith("/s") ? `${(m.value / 1e6).toFixed(2)} M` : m.value.toFixed(1)
    const details = Object.entries(m.details ?? {}).map(([k, v]) => `${k} ${typeof v === "number" ? v.toFixed(1) : v}`).join(", ")
    return `| ${m.benchmark} | ${m.variant} | ${value} ${m.unit} | ${details} |`
  }
  const results: Array<Measurement> = []
  if (json) process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write
  else console.log(`${machine.runtime} on ${machine.cpu} (${machine.cores} cores)\n\n| benchmark | variant | result | notes |\n|---|---|---|---|`)
  try {
    for (const benchmark of benchmarks) {
      for (const m of await benchmark.run()) {
        results.push(m)
        if (!json) console.log(format(m))
      }
    }
  } finally {
    process.stdout.write = stdout
  }
  if (json) stdout(`${JSON.stringify({ machine, results }, null, 2)}\n`)
}
