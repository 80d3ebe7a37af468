import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Platform } from "../core/src/index.ts"
import { table, wordCount } from "../examples/word-count.ts"
import { countWordsByHand } from "./helpers.ts"

const dataDir = path.resolve(import.meta.dirname, "..", "examples", "data")

describe("word count example", () => {
  it("counts the words of the bundled multi-file text exactly", async () => {
    const rows = await Effect.runPromise(wordCount(dataDir).pipe(Effect.provide(Platform.layer)))
    const expected = countWordsByHand(dataDir)
    expect(fs.readdirSync(dataDir).length).toBeGreaterThan(1)
    expect(new Map(rows.map((r) => [r.key, r.value]))).toEqual(expected)
    expect(rows.length).toBe(expected.size)
    // Sorted by count, most frequent first.
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1]!.value).toBeGreaterThanOrEqual(rows[i]!.value)
  })

  it("prints a table of the most frequent words", async () => {
    const rows = await Effect.runPromise(wordCount(dataDir).pipe(Effect.provide(Platform.layer)))
    const text = table(rows, 3)
    const top = [...countWordsByHand(dataDir)].sort((a, b) => b[1] - a[1])[0]!
    expect(text.split("\n")[3]).toBe(`| ${top[0].padEnd(4)} | ${String(top[1]).padStart(6)} |`)
    expect(text).toContain(`${rows.length} distinct words`)
  })
})
