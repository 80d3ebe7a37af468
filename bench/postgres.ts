/**
 * The PostgreSQL connectors beside the bare `postgres` client, on the machine's
 * server (PGURL): 1M rows read by `PostgresSource.query` (1 split; 4 splits
 * on 2 instances) vs a cursor loop, and written by the insert, upsert and
 * exactly-once sinks vs a loop of batched inserts (the upsert sink vs batched
 * upserts), 1024 rows per batch. The variants of a group run in turn.
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import postgres from "postgres"
import { Pipeline, Sink, Sources, Stage, Tributary } from "../core/src/index.ts"
import { PostgresClient, PostgresSink, PostgresSource } from "../plugins/postgres/src/index.ts"
import { type Benchmark, check, type Measurement, perSecond } from "./harness.ts"

const N = 1_000_000
const exec = promisify(execFile)
const BATCH = 1024
const url = process.env.PGURL ?? "postgres://postgres@127.0.0.1:5432/test"
const layer = PostgresClient.layer({ url, applicationName: "tributary_bench" })
const rows = Array.from({ length: N }, (_, i) => ({ id: i, payload: `payload-${i}` }))

/** One timed run of `body`, with `reset` (untimed) before it. */
const timed = async (reset: () => Promise<unknown>, body: () => Promise<number>) => {
  await reset()
  const start = performance.now()
  check("rows", await body(), N)
  return performance.now() - start
}

export const postgresBench: Benchmark = {
  name: "postgres",
  description: "200k rows: PostgresSource.query vs a cursor loop; insert / upsert / exactly-once sinks vs batched inserts",
  run: async () => {
    const sql = postgres(url, { max: 2, onnotice: () => {} })
    const source = `bench_pg_source_${process.pid}`
    const target = `bench_pg_sink_${process.pid}`
    try {
      await sql.unsafe(`create table ${source} (id bigint primary key, payload text not null)`)
      await sql.unsafe(`insert into ${source} select i, 'payload-' || i from generate_series(0, ${N - 1}) i`)
      await sql.unsafe(`create table ${target} (id bigint primary key, payload text not null)`)
      // Its visibility hints set and statistics taken now, not by autovacuum during a measurement.
      await sql.unsafe(`vacuum analyze ${source}`)
      const nothing = () => Promise.resolve()
      const truncate = () => sql.unsafe(`truncate ${target}`)
      const read = (splits: number, parallelism: number) => async () => {
        let count = 0
        const counting = Sink.make<unknown>({ name: "count", open: () => Effect.succeed({ write: (b) => Effect.sync(() => void (count += b.length)) }) })
        await Effect.runPromise(Tributary.run(Pipeline.from(PostgresSource.query({ table: source, splitColumn: "id", splits })).pipe(Stage.writeTo(counting)), {
          batchSize: BATCH,
          parallelism
        }).pipe(Effect.provide(layer)))
        return count
      }
      const write = (sink: Sink.Sink<postgres.Row, PostgresClient.PostgresClient>) => async () => {
        await Effect.runPromise(Tributary.run(Pipeline.from(Sources.fromIterable(rows)).pipe(Stage.writeTo(sink)), { batchSize: BATCH }).pipe(Effect.provide(layer)))
        return Number((await sql.unsafe(`select count(*) as n from ${target}`))[0]!.n)
      }
      const bare = {
        // The server's own limit: rows as text straight to psql's standard output, no client parsing them.
        copy: async () => {
          const { stdout } = await exec("psql", [url, "-Atc", `copy (select * from ${source} order by id) to stdout`], { maxBuffer: 1 << 30 })
          return stdout.split("\n").length - 1
        },
        read: async () => {
          let count = 0
          for await (const batch of sql.unsafe(`select * from ${source} order by id`).cursor(BATCH)) count += batch.length
          return count
        },
        write: async () => {
          for (let i = 0; i < N; i += BATCH) await sql`insert into ${sql(target)} ${sql(rows.slice(i, i + BATCH))}`
          return N
        },
        upsert: async () => {
          for (let i = 0; i < N; i += BATCH) {
            await sql`insert into ${sql(target)} ${sql(rows.slice(i, i + BATCH))} on conflict (id) do update set payload = excluded.payload`
          }
          return N
        }
      }
      // The variants in turn, 3 rounds, the best of each kept: a disturbance (the server's own
      // work, another process) falls on one run of one variant, not on all of a variant's.
      const measure = async (group: string, variants: ReadonlyArray<readonly [string, () => Promise<unknown>, () => Promise<number>]>) => {
        const best = variants.map(() => Infinity)
        for (let round = 0; round < 3; round++) {
          for (const [i, [, reset, body]] of variants.entries()) best[i] = Math.min(best[i]!, await timed(reset, body))
        }
        const out: Array<Measurement> = variants.map(([variant], i) => ({ benchmark: "postgres", variant: `${group}: ${variant}`, unit: "rows/s", value: perSecond(N, best[i]!) }))
        const bareRate = out[0]!.value
        return out.map((m) => ({ ...m, details: { "vs bare client": `${((m.value / bareRate) * 100).toFixed(0)}%` } }))
      }
      return [
        ...await measure("read", [
          ["bare cursor loop", nothing, bare.read],
          ["COPY (query) TO STDOUT through psql", nothing, bare.copy],
          ["query, 1 split", nothing, read(1, 1)],
          ["query, 4 splits on 2 instances", nothing, read(4, 2)]
        ]),
        ...await measure("write", [
          ["bare batched inserts", truncate, bare.write],
          ["insert sink", truncate, write(PostgresSink.insert({ table: target }))],
          ["exactly-once sink", truncate, write(PostgresSink.exactlyOnce({ table: target }))]
        ]),
        ...await measure("upsert", [
          ["bare batched upserts", truncate, bare.upsert],
          ["upsert sink", truncate, write(PostgresSink.upsert({ table: target, key: "id" }))]
        ])
      ]
    } finally {
      await sql.unsafe(`drop table if exists ${source}, ${target}`)
      await sql.end()
    }
  }
}
