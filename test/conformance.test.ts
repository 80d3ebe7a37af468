/**
 * The built-in file source and directory sink pass the conformance suite that
 * every plugin's source and sink pass against its own server.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { Platform, Sinks, Sources } from "../core/src/index.ts"
import { Conformance } from "../core/src/testing.ts"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "tributary-conformance-"))
const api = { describe, it, expect } as unknown as Conformance.TestApi

Conformance.source(api, {
  name: "Sources.files",
  layer: Platform.layer,
  rescalable: true,
  // Seven files of uneven length (by i² mod 7, some empty): splits of different sizes.
  source: (records) =>
    Effect.sync(() => {
      const dir = tempDir()
      const files = 7
      for (let f = 0; f < files; f++) {
        const own = records.filter((_, i) => (i * i) % files === f)
        fs.writeFileSync(path.join(dir, `part-${f}.txt`), own.map((r) => `${r}\n`).join(""))
      }
      return Sources.files(dir)
    }),
  splits: (perSplit, { bounded }) =>
    Effect.sync(() => {
      const dir = tempDir()
      perSplit.forEach((records, f) => fs.writeFileSync(path.join(dir, `split-${f}.txt`), records.map((r) => `${r}\n`).join("")))
      return Sources.files(dir, bounded ? {} : { watch: "20 millis" })
    })
})

Conformance.sink(api, {
  name: "Sinks.directory",
  layer: Platform.layer,
  guarantee: "exactly-once",
  sink: () =>
    Effect.sync(() => {
      const dir = tempDir()
      return {
        sink: Sinks.directory<string>(dir),
        committed: Effect.sync(() =>
          fs.readdirSync(dir).filter((n) => n.startsWith("part-")).flatMap((n) =>
            fs.readFileSync(path.join(dir, n), "utf8").split("\n").filter((l) => l.length > 0)
          ))
      }
    })
})
