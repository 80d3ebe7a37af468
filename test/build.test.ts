/**
 * `npm run build` produces packages a user can import without this repo's
 * "source" condition: ESM plus type declarations.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "..")

describe("build", () => {
  // Building once is enough; it does not depend on the runtime running the suite.
  it.skipIf("Bun" in globalThis || "Deno" in globalThis)("builds ESM and declarations that run a pipeline", async () => {
    execFileSync(path.join(root, "node_modules", ".bin", "tsup"), [], { cwd: root, stdio: "pipe", timeout: 120_000 })
    expect(fs.existsSync(path.join(root, "core", "dist", "index.d.ts"))).toBe(true)
    const script = `
      import { Effect } from "effect"
      import { Aggregate, Pipeline, Sinks, Sources, Stage, Tributary } from "@tributary/core"
      const out = Sinks.collect()
      await Effect.runPromise(Tributary.run(Pipeline.from(Sources.fromIterable([1, 2, 3])).pipe(
        Stage.aggregate(Aggregate.summing((x) => x)), Stage.writeTo(out))))
      console.log(out.items[0])`
    const printed = execFileSync(path.join(root, "node_modules", ".bin", "node"), ["--input-type=module", "-e", script], {
      cwd: root,
      encoding: "utf8"
    })
    expect(printed.trim()).toBe("6")
    // The built `tributary` command answers a wrong command line with its usage (exit code 2).
    const cli = spawnSync(path.join(root, "node_modules", ".bin", "node"), [path.join(root, "cluster", "bin", "tributary.js"), "member"], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, TRIBUTARY_SECRET: "s" }
    })
    expect(cli.status).toBe(2)
    expect(cli.stderr).toMatch(/--cluster is required\nusage:\n {2}tributary member/)
  }, 120_000)
})
