/** Word count over an in-memory corpus: Tributary next to a hand-written loop with a Map. */
import { Effect } from "effect"
import { Aggregate, Pipeline, Sinks, Sources, Stage, Tributary } from "../core/src/index.ts"
import { bestOf, type Benchmark, check, perSecond } from "./harness.ts"

const LINES = 200_000
const vocabulary = Array.from({ length: 5000 }, (_, i) => `w${(i * 7919) % 100_003}`)

/** Deterministic lines of 8 words drawn with a skewed distribution (a few words are frequent). */
const corpus = (): Array<string> => {
  let seed = 42
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296)
  return Array.from({ length: LINES }, () => Array.from({ length: 8 }, () => vocabulary[Math.floor(next() ** 3 * vocabulary.length)]).join(" "))
}

export const wordcount: Benchmark = {
  name: "wordcount",
  description: "word count over 200k lines (1.6M words, 5k distinct)",
  run: async () => {
    const lines = corpus()
    const words = LINES * 8
    const byHand = () => {
      const counts = new Map<string, number>()
      for (const line of lines) for (const w of line.split(" ")) counts.set(w, (counts.get(w) ?? 0) + 1)
      return counts
    }
    const tributary = async () => {
      const out = Sinks.collect<Stage.KeyedResult<string, number>>()
      await Effect.runPromise(Tributary.run(
        Pipeline.from(Sources.fromIterable(lines)).pipe(
          Stage.flatMap((line: string) => line.split(" ")),
          Stage.groupingKey((w) => w),
          Stage.aggregate(Aggregate.counting()),
          Stage.writeTo(out)
        )
      ))
      return out.items
    }
    const expected = byHand()
    const got = await tributary()
    check("distinct words", got.length, expected.size)
    for (const { key, value } of got) check(`count of ${key}`, value, expected.get(key))
    const loop = perSecond(words, await bestOf(3, () => void byHand()))
    const engine = perSecond(words, await bestOf(3, async () => void (await tributary())))
    return [
      { benchmark: "wordcount", variant: "hand-written loop", unit: "words/s", value: loop, details: { "vs loop": "100%" } },
      { benchmark: "wordcount", variant: "Tributary", unit: "words/s", value: engine, details: { "vs loop": `${((engine / loop) * 100).toFixed(0)}%` } }
    ]
  }
}
