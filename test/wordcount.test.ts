import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Platform } from "../core/src/index.ts"
import { table, wordCount } from "../examples/word-count.ts"

const dataDir = path.resolve(import.meta.dirname, "..", "examples", "data")

/** The same count written as a plain loop over the files, independent of the engine. */
const countByHand = (): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const file of fs.readdirSync(dataDir)) {
    for (const word of fs.readFileSync(path.join(dataDir, file), "utf8").toLowerCase().split(/[^\p{L}\p{N}']+/u)) {
      if (word.length > 0) counts.set(word, (counts.get(word) ?? 0) + 1)
    }
  }
  return counts
}

describe("word count example", () => {
  it("counts the words of the bundled multi-file text exactly", async () => {
    const rows = await Effect.runPromise(wordCount(dataDir).pipe(Effect.provide(Platform.layer)))
    const expected = countByHand()
    expect(fs.readdirSync(dataDir).length).toBeGreaterThan(1)
    expect(new Map(rows.map((r) => [r.key, r.value]))).toEqual(expected)
    expect(rows.length).toBe(expected.size)
    // Sorted by count, most frequent first.
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1]!.value).toBeGreaterThanOrEqual(rows[i]!.value)
  })

  it("prints a table of the most frequent words", async () => {
    const rows = await Effect.runPromise(wordCount(dataDir).pipe(Effect.provide(Platform.layer)))
    const text = table(rows, 3)
    const top = [...countByHand()].sort((a, b) => b[1] - a[1])[0]!
    expect(text.split("\n")[3]).toBe(`| ${top[0].padEnd(4)} | ${String(top[1]).padStart(6)} |`)
    expect(text).toContain(`${rows.length} distinct words`)
  })
})
