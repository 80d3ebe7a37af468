/**
 * The cost of event time per split: 10M records through `withTimestamps` (and
 * a filter that drops them, so nothing after it costs), from a plain array
 * source and from sources of 1 and of 1000 splits read in turn, where the
 * watermark is a minimum over all of them; and the 1000 splits again with
 * their splits hidden from the engine (one watermark), so that the difference
 * is the per-split bookkeeping alone. A window after it is left out on
 * purpose: with 1000 splits read in turn every batch spans a thousand times the
 * event time, which changes the window's work, not the bookkeeping measured here.
 */
import { Effect } from "effect"
import { Pipeline, Sinks, Source, Sources, Splits, Stage, Tributary } from "../core/src/index.ts"
import { type Benchmark, check, type Measurement, perSecond } from "./harness.ts"

const N = 10_000_000
const BATCH = 1024

/** `N` records dealt over `count` splits, each ascending in time, read a batch at a time. */
const ofSplits = (data: ReadonlyArray<number>, count: number) => {
  const parts = Array.from({ length: count }, (): Array<number> => [])
  for (let i = 0; i < data.length; i++) parts[i % count]!.push(data[i]!)
  return () => Splits.make({
    name: `splits-${count}`,
    bounded: false,
    enumerate: () => Effect.succeed(Array.from({ length: count }, (_, i) => ({ id: String(i) }))),
    open: (split) =>
      Effect.sync(() => {
        const own = parts[Number(split.id)]!
        let next = 0
        return {
          position: () => next,
          pull: Effect.sync(() => (next >= own.length ? undefined : own.slice(next, (next += BATCH))))
        }
      })
  })
}

/** The same source with its splits hidden from the engine: one watermark for all, the baseline of the bookkeeping. */
const oneWatermark = (make: () => Source.Source<number>) => () => {
  const source = make()
  return Source.make<number, never>({ ...source, open: (ctx) => Effect.map(source.open(ctx) as Effect.Effect<Source.SourceReader<number>, unknown>, (reader) => ({ ...reader, splits: undefined })) })
}

const timestamped = (source: Source.Source<number>, allowedLag: number) => {
  let seen = 0
  return Effect.map(
    Tributary.run(Pipeline.from(source).pipe(
      Stage.withTimestamps((t: number) => t, { allowedLag }),
      Stage.filter(() => void seen++ === 0 && false),
      Stage.writeTo(Sinks.collect<number>())
    ), { batchSize: BATCH }),
    () => seen
  )
}

export const splits: Benchmark = {
  name: "splits",
  description: "10M records through withTimestamps: plain source vs 1 and 1000 splits (a watermark per split)",
  run: async () => {
    const data = Array.from({ length: N }, (_, i) => i)
    // One watermark over splits read in turn lags by all of them: a lag that makes nothing late.
    const variants: Array<[string, () => Source.Source<number>, number]> = [
      ["array source", () => Sources.fromIterable(data), 1000],
      ["1 split", ofSplits(data, 1), 1000],
      ["1000 splits", ofSplits(data, 1000), 1000],
      ["1000 splits, one watermark", oneWatermark(ofSplits(data, 1000)), N]
    ]
    const bodies = variants.map(([variant, source, lag]) => ({ variant, body: () => Effect.runPromise(timestamped(source(), lag)) }))
    for (const { variant, body } of bodies) check(variant, await body(), N)
    // Rounds of every variant in turn, the best of each kept: a slow spell of the machine hits them all alike.
    const best = bodies.map(() => Infinity)
    for (let round = 0; round < 4; round++) {
      for (const [i, { body }] of bodies.entries()) {
        const start = performance.now()
        await body()
        best[i] = Math.min(best[i]!, performance.now() - start)
      }
    }
    const results: Array<Measurement> = bodies.map(({ variant }, i) => ({ benchmark: "splits", variant, unit: "records/s", value: perSecond(N, best[i]!) }))
    const [plain, one, perSplit, shared] = results.map((r) => r.value) as [number, number, number, number]
    return results.map((r) => ({
      ...r,
      details: {
        "vs array source": `${((r.value / plain) * 100).toFixed(0)}%`,
        "vs 1 split": `${((r.value / one) * 100).toFixed(0)}%`,
        ...(r.value === perSplit ? { "per-split bookkeeping costs": `${((1 - perSplit / shared) * 100).toFixed(1)}%` } : {})
      }
    }))
  }
}
