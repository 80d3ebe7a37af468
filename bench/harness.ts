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

/** Records per second for `count` records in `ms` milliseconds. */
export const perSecond = (count: number, ms: number) => (count / ms) * 1000

export const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

export const check = (what: string, actual: unknown, expected: unknown) => {
  if (actual !== expected) throw new Error(`${what}: got ${String(actual)}, expected ${String(expected)}`)
}
