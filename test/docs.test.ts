/**
 * Runs every ```ts example block of docs/*.md and compares what it prints with
 * the ```text block that follows it, so the documentation cannot drift from
 * the code. A ```ts example process block runs as a script of its own (it
 * starts copies of itself); a ```ts example node block runs on Node only (its
 * plugin's tests do too).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it, vi } from "vitest"
import { runtimeArgs } from "./cluster-helpers.ts"

const root = path.resolve(import.meta.dirname, "..")
const docsDir = path.join(root, "docs")
const outDir = path.join(root, ".tmp", "docs")

interface Example {
  readonly file: string
  readonly line: number
  readonly code: string
  readonly output: string | undefined
  readonly process: boolean
  readonly nodeOnly: boolean
}

const examplesOf = (file: string): Array<Example> => {
  const text = fs.readFileSync(path.join(docsDir, file), "utf8")
  const blocks = [...text.matchAll(/^```(\S*)[^\n]*\n([\s\S]*?)^```$/gm)].map((m) => ({
    info: m[1]!,
    body: m[2]!,
    line: text.slice(0, m.index).split("\n").length
  }))
  return blocks.flatMap((b, i) => {
    const opening = text.split("\n")[b.line - 1]!
    return b.info === "ts" && /^```ts example/.test(opening)
      ? [{
        file,
        line: b.line,
        code: b.body,
        output: blocks[i + 1]?.info === "text" ? blocks[i + 1]!.body.trimEnd() : undefined,
        process: /^```ts example process/.test(opening),
        nodeOnly: /^```ts example.* node\b/.test(opening)
      }]
      : []
  })
}

const docs = fs.readdirSync(docsDir).filter((f) => f.endsWith(".md"))
const onNode = !("Bun" in globalThis || "Deno" in globalThis)
const examples = docs.flatMap(examplesOf).filter((e) => onNode || !e.nodeOnly)

describe("docs examples", () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it("exist", () => {
    expect(examples.length).toBeGreaterThan(5)
  })

  it.each(examples.map((e) => [`${e.file}:${e.line}`, e] as const))("%s", async (_, example) => {
    fs.mkdirSync(outDir, { recursive: true })
    const target = path.join(outDir, `${example.file.replace(/\W/g, "_")}_${example.line}.ts`)
    fs.writeFileSync(target, example.code)
    if (example.process) {
      const printed = execFileSync(process.execPath, [...runtimeArgs, target], { cwd: root, encoding: "utf8" })
      return expect(printed.trimEnd()).toBe(example.output)
    }
    const printed: Array<string> = []
    vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
      printed.push(args.map(String).join(" "))
    })
    await import(/* @vite-ignore */ target)
    if (example.output !== undefined) expect(printed.join("\n").trimEnd()).toBe(example.output)
  })
})
