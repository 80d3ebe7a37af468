/**
 * The MySQL / MariaDB plugin beside the bare `mysql2` client, on the local
 * server (127.0.0.1:3306, db `test`): reading a 1M-row table with the query
 * source (1 split; 4 splits on one instance) vs one streaming query; writing
 * 200k rows with the upsert and the XA sinks vs plain batched inserts of 1000
 * rows. The variants of each group run in turn, three rounds.
 */
import { Effect } from "effect"
import type { Connection as CallbackConnection } from "mysql2"
import * as mysql from "mysql2/promise"
import { Pipeline, type Sink, Sinks, Sources, Stage, Tributary } from "../core/src/index.ts"
import { MysqlClient, MysqlSink, MysqlSource, MysqlXaSink } from "../plugins/mysql/src/index.ts"
import { type Benchmark, check, type Measurement, perSecond } from "./harness.ts"

const READ = 1_000_000
const WRITE = 200_000
const BATCH = 1000
const ROUNDS = 3
const tag = `${process.pid}_${Date.now() % 1e6}`

/**
 * The variants in turn, `ROUNDS` times, the best of each kept (a disturbance falls on one run of one
 * variant, not on all of a variant's): rows/s each, and its ratio to the first, the bare client's.
 */
const measure = async (variants: ReadonlyArray<readonly [string, () => Promise<unknown>, () => Promise<number>]>, rows: number): Promise<Array<Measurement>> => {
  const best = variants.map(() => Infinity)
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, [variant, reset, body]] of variants.entries()) {
      await reset()
      const start = performance.now()
      check(variant, await body(), rows)
      best[i] = Math.min(best[i]!, performance.now() - start)
    }
  }
  const bare = perSecond(rows, best[0]!)
  return variants.map(([variant], i) => ({
    benchmark: "mysql",
    variant,
    unit: "rows/s",
    value: perSecond(rows, best[i]!),
    details: { "vs bare mysql2": `${((perSecond(rows, best[i]!) / bare) * 100).toFixed(0)}%` }
  }))
}

export const mysqlBench: Benchmark = {
  name: "mysql",
  description: "MariaDB: query source vs a mysql2 query's row events; upsert / XA sinks vs plain batched inserts (ratios)",
  run: async () => {
    const admin = await mysql.createConnection({ host: "127.0.0.1", user: "root", database: "test" })
    const source = `trib_bench_src_${tag}`
    const sinks = ["plain", "upsert", "xa"].map((s) => `trib_bench_${s}_${tag}`)
    try {
      await admin.query(`CREATE TABLE ${source} (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL, n INT NOT NULL)`)
      for (let i = 0; i < READ; i += 10_000) {
        await admin.query(`INSERT INTO ${source} (id, v, n) VALUES ?`, [Array.from({ length: 10_000 }, (_, j) => [i + j, `value-${i + j}`, j])])
      }
      for (const t of sinks) await admin.query(`CREATE TABLE ${t} (v VARCHAR(64) PRIMARY KEY, n INT NOT NULL)`)
      const layer = MysqlClient.layer()
      const runIn = <A>(e: Effect.Effect<A, unknown, MysqlClient.MysqlClient>) => Effect.runPromise(Effect.provide(e, layer) as Effect.Effect<A, unknown>)
      const nothing = () => Promise.resolve()

      const bareRead = () =>
        new Promise<number>((resolve, reject) => {
          let n = 0
          // The callback connection under the promise one: its query emits each row as it is parsed (no
          // Readable, whose 16-row buffer would pause the connection every 16 rows).
          const raw = (admin as unknown as { connection: CallbackConnection }).connection
          raw.query(`SELECT * FROM ${source} ORDER BY id`).on("result", () => void n++).on("end", () => resolve(n)).on("error", reject)
        })
      const read = (splits: number) => () =>
        runIn(Effect.gen(function*() {
          const src = yield* MysqlSource.query({ table: source, key: "id", splits })
          let n = 0
          yield* Tributary.run(Pipeline.from(src).pipe(Stage.filter(() => void n++ === 0 && false), Stage.writeTo(Sinks.collect())), { batchSize: BATCH })
          return n
        }))

      const records = Array.from({ length: WRITE }, (_, i) => `record-${i}`)
      const truncate = (table: string) => () => admin.query(`TRUNCATE TABLE ${table}`)
      const bareWrite = async () => {
        for (let i = 0; i < WRITE; i += BATCH) await admin.query(`INSERT INTO ${sinks[0]} (v, n) VALUES ?`, [records.slice(i, i + BATCH).map((r) => [r, 1])])
        return WRITE
      }
      const write = (table: string, sink: Effect.Effect<Sink.Sink<string, MysqlClient.MysqlClient>, unknown, MysqlClient.MysqlClient>) => () =>
        runIn(Effect.gen(function*() {
          yield* Tributary.run(Pipeline.from(Sources.fromIterable(records)).pipe(Stage.writeTo(yield* sink)), {
            batchSize: BATCH,
            processingGuarantee: "exactly-once",
            snapshotInterval: "1 second"
          })
          const [counted] = yield* Effect.promise(() => admin.query<Array<mysql.RowDataPacket>>(`SELECT COUNT(*) AS n FROM ${table}`))
          return Number(counted[0]!.n)
        }))
      const values = (r: string) => [r, 1]
      return [
        ...await measure([
          ["mysql2 query, row events", nothing, bareRead],
          ["query source, 1 split", nothing, read(1)],
          ["query source, 4 splits on 1 instance", nothing, read(4)]
        ], READ),
        ...await measure([
          ["mysql2 batched insert", truncate(sinks[0]!), bareWrite],
          ["upsert sink", truncate(sinks[1]!), write(sinks[1]!, MysqlSink.upsert({ table: sinks[1]!, columns: ["v", "n"], key: ["v"], values }))],
          ["XA exactly-once sink", truncate(sinks[2]!), write(sinks[2]!, MysqlXaSink.exactlyOnce({ table: sinks[2]!, columns: ["v", "n"], values, stateTable: `trib_bench_state_${tag}` }))]
        ], WRITE)
      ]
    } finally {
      for (const t of [source, ...sinks, `trib_bench_state_${tag}`, `trib_bench_state_${tag}_epochs`]) await admin.query(`DROP TABLE IF EXISTS ${t}`)
      await admin.end()
    }
  }
}
