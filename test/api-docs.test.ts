/**
 * The API reference (docs/api, `npm run docs:api`) is generated from the TSDoc
 * and checked in: building it again must warn of nothing (an export missing,
 * a broken link) and give the same files, so it cannot fall out of date.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "..")
const checkedIn = path.join(root, "docs", "api")
const built = path.join(root, ".tmp", "api")

const files = (dir: string) => fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".md")).sort()

describe("API reference", () => {
  // Once is enough: it does not depend on the runtime running the suite.
  it.skipIf("Bun" in globalThis || "Deno" in globalThis)("docs/api is what TypeDoc makes of the sources", () => {
    fs.rmSync(built, { recursive: true, force: true })
    // typedoc.json treats warnings as errors: the command fails on them.
    execFileSync(process.execPath, [path.join(root, "node_modules", "typedoc", "bin", "typedoc"), "--out", built], {
      cwd: root,
      stdio: "pipe",
      timeout: 170_000
    })
    const stale = "docs/api is stale: run `npm run docs:api`"
    expect(files(built), stale).toEqual(files(checkedIn))
    for (const f of files(built)) {
      expect(fs.readFileSync(path.join(built, f), "utf8"), `${stale} (${f})`).toBe(fs.readFileSync(path.join(checkedIn, f), "utf8"))
    }
  }, 180_000)
})
