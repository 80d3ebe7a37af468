/**
 * Change data capture from PostgreSQL (PGURL): `N` inserts in transactions of
 * `TX` rows, from the first insert until the last change is received, read by
 * the bare client (`postgres`'s `subscribe`, a temporary slot) and by a job on
 * `PostgresCdc.source` (a permanent slot, changes counted in a stage). Both
 * include the server's decoding, which is most of the work. Then the latency
 * from a row's insertion (its `clock_timestamp()`, just before its commit) to
 * its arrival, under a steady load of `LOAD_TPS` small transactions a second.
 */
import { Effect } from "effect"
import postgres from "postgres"
import { Pipeline, Platform, Sinks, Stage, Tributary } from "../core/src/index.ts"
import { PostgresCdc } from "../plugins/postgres/src/index.ts"
import { type Benchmark, bestOf, LatencyHistogram, type Measurement, perSecond } from "./harness.ts"

const url = process.env.PGURL ?? "postgres://postgres@127.0.0.1:5432/test"
const N = 100_000
const TX = 5_000
const name = `bench_cdc_${process.pid}`
const LOAD_TPS = 200
const LOAD_ROWS = 5
const LOAD_SECONDS = 5

const insertAll = async (sql: postgres.Sql) => {
  for (let from = 0; from < N; from += TX) {
    await sql.unsafe(`insert into ${name} (v) select 'value ' || i from generate_series(${from}, ${from + TX - 1}) i`)
  }
}
const until = async (done: () => boolean) => {
  while (!done()) await new Promise((r) => setTimeout(r, 1))
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)))
/** The steady load: `LOAD_TPS` transactions a second, each paced to its own moment; answers the rows written. */
const steadyLoad = async (sql: postgres.Sql) => {
  const start = performance.now()
  const n = LOAD_TPS * LOAD_SECONDS
  for (let i = 0; i < n; i++) {
    await sleep(start + (i * 1000) / LOAD_TPS - performance.now())
    await sql.unsafe(`insert into ${name} (v) select 'load ' || i from generate_series(1, ${LOAD_ROWS}) i`)
  }
  return n * LOAD_ROWS
}
/** Milliseconds since a row was inserted (same machine, same clock). */
const since = (row: { readonly t?: unknown } | null | undefined) => Date.now() - Number(row?.t)
const latencyRows = (variant: string, histogram: LatencyHistogram): Array<Measurement> =>
  (["p50", "p99"] as const).map((q) => ({
    benchmark: "postgres-cdc",
    variant: `latency ${q}: ${variant}`,
    unit: "ms",
    value: histogram.summary()[q],
    details: { at: `${LOAD_TPS * LOAD_ROWS} changes/s` }
  }))

export const postgresCdc: Benchmark = {
  name: "postgres-cdc",
  description: `${N} inserts in transactions of ${TX}, then ${LOAD_TPS} transactions/s of ${LOAD_ROWS} rows: the bare client's subscribe vs PostgresCdc.source`,
  run: async () => {
    const sql = postgres(url, { max: 1, onnotice: () => {} })
    await sql.unsafe(`create table ${name} (id serial primary key, v text, t double precision default extract(epoch from clock_timestamp()) * 1000)`)
    await sql.unsafe(`create publication ${name} for table ${name}`)
    try {
      const bare = postgres(url, { publications: name, onnotice: () => {} })
      let received = 0
      let bareLatency: LatencyHistogram | undefined
      await bare.subscribe(`insert:public.${name}`, (row) => {
        received++
        bareLatency?.record(since(row))
      })
      const bareMs = await bestOf(2, async () => {
        received = 0
        await insertAll(sql)
        await until(() => received >= N)
      })
      bareLatency = new LatencyHistogram()
      received = 0
      const bareLoad = await steadyLoad(sql)
      await until(() => received >= bareLoad)
      await bare.end()

      let counted = 0
      let cdcLatency: LatencyHistogram | undefined
      const cdc = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const job = yield* Tributary.submit(
          Pipeline.from(PostgresCdc.source({ slot: name, publication: name, url })).pipe(
            Stage.filter((change) => {
              counted++
              cdcLatency?.record(since(change.after))
              return false
            }),
            Stage.writeTo(Sinks.collect())
          ),
          {}
        )
        // Changes are captured once the source streams from its slot.
        yield* Effect.promise(async () => {
          while (!(await sql`select active from pg_replication_slots where slot_name = ${name}`)[0]?.active) await new Promise((r) => setTimeout(r, 10))
        })
        const ms = yield* Effect.promise(() =>
          bestOf(2, async () => {
            counted = 0
            await insertAll(sql)
            await until(() => counted >= N)
          })
        )
        cdcLatency = new LatencyHistogram()
        counted = 0
        const load = yield* Effect.promise(() => steadyLoad(sql))
        yield* Effect.promise(() => until(() => counted >= load))
        yield* job.cancel
        return { ms, latency: cdcLatency }
      })).pipe(Effect.provide(Platform.layer)))
      const results: Array<Measurement> = [
        { benchmark: "postgres-cdc", variant: "postgres subscribe (bare client)", unit: "changes/s", value: perSecond(N, bareMs) },
        { benchmark: "postgres-cdc", variant: "PostgresCdc.source", unit: "changes/s", value: perSecond(N, cdc.ms) }
      ]
      return [
        ...results.map((r) => ({ ...r, details: { "vs bare client": `${((r.value / results[0]!.value) * 100).toFixed(0)}%` } })),
        ...latencyRows("postgres subscribe (bare client)", bareLatency),
        ...latencyRows("PostgresCdc.source", cdc.latency)
      ]
    } finally {
      await sql.unsafe(`drop publication if exists ${name}`)
      await sql.unsafe(`drop table if exists ${name}`)
      for (let i = 0; i < 50; i++) {
        const [slot] = await sql`select active from pg_replication_slots where slot_name = ${name}`
        if (!slot) break
        if (!slot.active) await sql`select pg_drop_replication_slot(${name})`.catch(() => {})
        else await new Promise((r) => setTimeout(r, 100))
      }
      await sql.end()
    }
  }
}
