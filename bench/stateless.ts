/**
 * map → filter → sum over 10M numbers: Tributary next to a hand-written loop,
 * RxJS and a plain Effect Stream, all over the same in-memory array; and
 * Tributary with its metrics sampled 10 times a second against not sampled.
 */
import { Effect, Stream } from "effect"
import { filter as rxFilter, from, lastValueFrom, map as rxMap, reduce } from "rxjs"
import { Aggregate, Pipeline, Sinks, Sources, Stage, Tributary } from "../core/src/index.ts"
import { bestOf, type Benchmark, check, type Measurement, perSecond } from "./harness.ts"

const N = 10_000_000
const double = (x: number) => x * 2
const third = (x: number) => x % 3 === 0

export const stateless: Benchmark = {
  name: "stateless",
  description: "map → filter → sum over 10M numbers",
  run: async () => {
    const data = Array.from({ length: N }, (_, i) => i)
    let expected = 0
    for (let i = 0; i < N; i++) {
      const x = data[i]! * 2
      if (x % 3 === 0) expected += x
    }
    const variants: Array<[string, () => Promise<number>]> = [
      ["hand-written loop", async () => {
        let sum = 0
        for (let i = 0; i < data.length; i++) {
          const x = double(data[i]!)
          if (third(x)) sum += x
        }
        return sum
      }],
      ...([[1024, true], [1024, false], [4096, true]] as const).map(([batchSize, metrics]): [string, () => Promise<number>] => [
        `Tributary (batch ${batchSize}${metrics ? "" : ", metrics off"})`,
        async () => {
          const out = Sinks.collect<number>()
          await Effect.runPromise(Tributary.run(
            Pipeline.from(Sources.fromIterable(data)).pipe(
              Stage.map(double),
              Stage.filter(third),
              Stage.aggregate(Aggregate.summing((x: number) => x)),
              Stage.writeTo(out)
            ),
            // Sampled 10 times a second rather than once: the cost of metrics, magnified.
            { batchSize, metrics, metricsInterval: "100 millis" }
          ))
          return out.items[0]!
        }
      ]),
      ["RxJS", () => lastValueFrom(from(data).pipe(rxMap(double), rxFilter(third), reduce((a, x) => a + x, 0)))],
      ["Effect Stream", () =>
        Effect.runPromise(Stream.fromArray(data).pipe(
          Stream.map(double),
          Stream.filter(third),
          Stream.runFold(() => 0, (a: number, x: number) => a + x)
        ))]
    ]
    const results: Array<Measurement> = []
    for (const [variant, body] of variants) {
      check(variant, await body(), expected)
      const ms = await bestOf(3, async () => void (await body()))
      results.push({ benchmark: "stateless", variant, unit: "records/s", value: perSecond(N, ms) })
    }
    const loop = results[0]!.value
    const off = results.find((r) => r.variant.includes("metrics off"))!.value
    return results.map((r) => ({
      ...r,
      details: {
        "vs loop": `${((r.value / loop) * 100).toFixed(0)}%`,
        ...(r.variant === "Tributary (batch 1024)" ? { "vs metrics off": `${((r.value / off) * 100).toFixed(1)}%` } : {})
      }
    }))
  }
}
