/**
 * `npm run bench [-- <name>...] [-- --json]`: runs the benchmarks (all, or the
 * named ones) and prints a table, or one JSON document with `--json`.
 * Figures are records per second unless a row says otherwise.
 */
import * as os from "node:os"
import { cluster } from "./cluster.ts"
import type { Benchmark, Measurement } from "./harness.ts"
import { link } from "./link.ts"
import { nexmark } from "./nexmark/bench.ts"
import { recovery } from "./recovery.ts"
import { snapshots } from "./snapshots.ts"
import { stateless } from "./stateless.ts"
import { windowed } from "./windowed.ts"
import { wordcount } from "./wordcount.ts"

const benchmarks: ReadonlyArray<Benchmark> = [stateless, wordcount, windowed, snapshots, nexmark, link, cluster, recovery]

const args = process.argv.slice(2)
const json = args.includes("--json")
const names = args.filter((a) => !a.startsWith("--"))
const unknown = names.filter((n) => !benchmarks.some((b) => b.name === n))
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(", ")}; known: ${benchmarks.map((b) => b.name).join(", ")}`)
  process.exit(2)
}
const selected = names.length === 0 ? benchmarks : benchmarks.filter((b) => names.includes(b.name))

const machine = {
  runtime: "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : `node ${process.version}`,
  cpu: os.cpus()[0]?.model ?? "unknown",
  cores: os.cpus().length
}

const format = (m: Measurement) => {
  const value = m.unit.endsWith("/s") ? `${(m.value / 1e6).toFixed(2)} M` : m.value.toFixed(1)
  const details = Object.entries(m.details ?? {}).map(([k, v]) => `${k} ${typeof v === "number" ? v.toFixed(1) : v}`).join(", ")
  return `| ${m.benchmark} | ${m.variant} | ${value} ${m.unit} | ${details} |`
}

const results: Array<Measurement> = []
if (!json) console.log(`${machine.runtime} on ${machine.cpu} (${machine.cores} cores)\n\n| benchmark | variant | result | notes |\n|---|---|---|---|`)
for (const benchmark of selected) {
  for (const m of await benchmark.run()) {
    results.push(m)
    if (!json) console.log(format(m))
  }
}
if (json) console.log(JSON.stringify({ machine, results }, null, 2))
