/**
 * The quick-start: count the words of the bundled texts (five open-source
 * licenses in examples/data) and print the most frequent ones as a table.
 * Runs embedded, in this process, with no server.
 */
import { Console, Effect } from "effect"
import { Aggregate, Pipeline, Platform, Sinks, Sources, Stage, Tributary } from "@tributary/core"

const dataDir = new URL("./data", import.meta.url).pathname

/** The count of each word of the files in `directory`. */
export const wordCounts = (directory: string) =>
  Pipeline.from(Sources.files(directory)).pipe(
    Stage.flatMap((line: string) => line.toLowerCase().split(/[^\p{L}\p{N}']+/u)),
    Stage.filter((word) => word.length > 0),
    Stage.groupingKey((word) => word),
    Stage.aggregate(Aggregate.counting())
  )

export const wordCount = (directory: string) => {
  const counts = Sinks.collect<Stage.KeyedResult<string, number>>()
  const pipeline = wordCounts(directory).pipe(
    Stage.sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : 1)),
    Stage.writeTo(counts)
  )
  return Effect.as(Tributary.run(pipeline), counts.items)
}

/** Rows of a fixed-width text table. */
export const table = (rows: ReadonlyArray<Stage.KeyedResult<string, number>>, top: number): string => {
  const shown = rows.slice(0, top)
  const width = Math.max(4, ...shown.map((r) => r.key.length))
  const line = `+-${"-".repeat(width)}-+--------+`
  return [
    line,
    `| ${"word".padEnd(width)} |  count |`,
    line,
    ...shown.map((r) => `| ${r.key.padEnd(width)} | ${String(r.value).padStart(6)} |`),
    line,
    `${rows.length} distinct words, ${rows.reduce((n, r) => n + r.value, 0)} in all`
  ].join("\n")
}

if (import.meta.main) {
  const top = Number(process.argv[2] ?? 15)
  wordCount(dataDir).pipe(
    Effect.flatMap((rows) => Console.log(table(rows, top))),
    Effect.provide(Platform.layer),
    Platform.runMain
  )
}
