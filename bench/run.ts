/**
 * `npm run bench [-- <name>...] [-- --json]`: runs the benchmarks (all, or the
 * named ones) and prints a table, or one JSON document with `--json`.
 * Figures are records per second unless a row says otherwise.
 */
import * as os from "node:os"
import { cluster } from "./cluster.ts"
import { type Benchmark, report } from "./harness.ts"
import { kafka } from "./kafka.ts"
import { link } from "./link.ts"
import { mysqlBench } from "./mysql.ts"
import { nexmark } from "./nexmark/bench.ts"
import { postgresBench } from "./postgres.ts"
import { postgresCdc } from "./postgres-cdc.ts"
import { recovery } from "./recovery.ts"
import { snapshots } from "./snapshots.ts"
import { splits } from "./splits.ts"
import { stateless } from "./stateless.ts"
import { windowed } from "./windowed.ts"
import { wordcount } from "./wordcount.ts"

const benchmarks: ReadonlyArray<Benchmark> = [stateless, wordcount, windowed, snapshots, splits, nexmark, link, cluster, recovery, postgresBench, postgresCdc, mysqlBench, kafka]

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

await report(selected, json, machine)
