/**
 * The README's main example prints the same table on Node, Bun and Deno, each
 * started the way docs/runtimes.md says (binaries from node_modules/.bin).
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "..")
const bin = (name: string) => path.join(root, "node_modules", ".bin", name)
const example = "examples/word-count.ts"

const commands = {
  node: [bin("node"), ["--conditions=source", example]],
  bun: [bin("bun"), ["--conditions=source", example]],
  deno: [bin("deno"), ["run", "-A", "--conditions=source", example]]
} as const

const runOn = (runtime: keyof typeof commands) => {
  const [command, args] = commands[runtime]
  return execFileSync(command, [...args], { cwd: root, encoding: "utf8", timeout: 60_000 })
}

describe("runtimes", () => {
  // One comparison covers all three runtimes, whichever runtime runs the suite.
  it.skipIf(!process.versions.node || "Bun" in globalThis || "Deno" in globalThis)(
    "the word-count example prints the same result on Node, Bun and Deno",
    () => {
      const outputs = (["node", "bun", "deno"] as const).map(runOn)
      expect(outputs[0]).toMatch(/\| the\s+\|\s+\d+ \|/)
      expect(outputs[1]).toBe(outputs[0])
      expect(outputs[2]).toBe(outputs[0])
    },
    120_000
  )
})
