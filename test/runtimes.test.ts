/**
 * The README's main example prints the same table on Node, Bun and Deno, each
 * started the way docs/runtimes.md says (binaries from node_modules/.bin).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
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

/** Deno without node_modules: an import map of `npm:` specifiers, as docs/runtimes.md shows. */
const runOnDenoWithNpmSpecifiers = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-deno-"))
  fs.writeFileSync(path.join(dir, "deno.json"), JSON.stringify({
    nodeModulesDir: "none",
    imports: {
      "effect": "npm:effect@^4.1.0",
      "effect/": "npm:/effect@^4.1.0/",
      "@effect/platform-node": "npm:@effect/platform-node@^4.1.0",
      "msgpackr": "npm:msgpackr@^2.1.4",
      "@tributary/core": path.join(root, "core", "src", "index.ts")
    }
  }))
  const app = fs.readFileSync(path.join(root, example), "utf8")
    .replace(`new URL("./data", import.meta.url).pathname`, JSON.stringify(path.join(root, "examples", "data")))
  fs.writeFileSync(path.join(dir, "app.ts"), app)
  return execFileSync(bin("deno"), ["run", "-A", "--config", "deno.json", "app.ts"], { cwd: dir, encoding: "utf8", timeout: 120_000 })
}

describe("runtimes", () => {
  // One comparison covers all three runtimes, whichever runtime runs the suite.
  it.skipIf(!process.versions.node || "Bun" in globalThis || "Deno" in globalThis)(
    "the word-count example prints the same result on Node, Bun and Deno",
    () => {
      const outputs = [...(["node", "bun", "deno"] as const).map(runOn), runOnDenoWithNpmSpecifiers()]
      expect(outputs[0]).toMatch(/\| the\s+\|\s+\d+ \|/)
      expect(outputs[1]).toBe(outputs[0])
      expect(outputs[2]).toBe(outputs[0])
      expect(outputs[3]).toBe(outputs[0])
    },
    240_000
  )
})
