/**
 * The cost of event time per split: 10M records through `withTimestamps` (and
 * a filter that drops them, so nothing after it costs), from a plain array
 * source and from sources of 1 and of 1000 splits read in turn, where the
 * watermark is a minimum over all of them. A window after it is left out on
 * purpose: with 1000 splits read in turn every batch spans a thousand times the
 * event time, which changes the window's work, not the bookkeeping measured here.
 */
import { Effect } from "effect"
import { Pipeline, Sinks, Source, Sources, Splits, Stage, Tributary } from "../core/src/index.ts"
import { bestOf, type Benchmark, check, type Measurement, perSecond } from "./harness.ts"

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

const timestamped = (source: Source.Source<number>) => {
  let seen = 0
  return Effect.map(
    Tributary.run(Pipeline.from(source).pipe(
      Stage.withTimestamps((t: number) => t, { allowedLag: 1000 }),
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
    const variants: Array<[string, () => Source.Source<number>]> = [
      ["array source", () => Sources.fromIterable(data)],
      ["1 split", ofSplits(data, 1)],
      ["1000 splits", ofSplits(data, 1000)]
    ]
    const results: Array<Measurement> = []
    for (const [variant, source] of variants) {
      const body = () => Effect.runPromise(timestamped(source()))
      check(variant, await body(), N)
      const ms = await bestOf(3, async () => void (await body()))
      results.push({ benchmark: "splits", variant, unit: "records/s", value: perSecond(N, ms) })
    }
    const [plain, one] = [results[0]!.value, results[1]!.value]
    return results.map((r) => ({ ...r, details: { "vs array source": `${((r.value / plain) * 100).toFixed(0)}%`, "vs 1 split": `${((r.value / one) * 100).toFixed(0)}%` } }))
  }
}
