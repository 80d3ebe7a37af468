/** The PostgreSQL connectors against the real server (PGURL, default 127.0.0.1:5432/test). */
import { Effect, Exit } from "effect"
import postgres from "postgres"
import { afterAll, describe, expect, it } from "vitest"
import { Pipeline, Sink, Sinks, type Source, Sources, Stage, Tributary } from "../core/src/index.ts"
import { Conformance } from "../core/src/testing.ts"
import { PostgresClient, PostgresLookup, PostgresSink, PostgresSource } from "../plugins/postgres/src/index.ts"

const url = process.env.PGURL ?? "postgres://postgres@127.0.0.1:5432/test"
const run = `${process.pid}_${Math.floor(Math.random() * 1e6)}`
const applicationName = `tributary_test_${run}`
const layer = PostgresClient.layer({ url, applicationName })
const api = { describe, it, expect } as unknown as Conformance.TestApi
const admin = postgres(url, { max: 2, onnotice: () => {} })
const tables: Array<string> = []
let counter = 0
/** A fresh table of this run, dropped after the tests. */
const freshTable = (columns: string) =>
  Effect.promise(async () => {
    const table = `trib_pg_${run}_${counter++}`
    tables.push(table)
    await admin.unsafe(`create table ${table} (${columns})`)
    return table
  })
/** This run's sessions, once the server has let go of those just closed (it takes a moment after the socket closes). */
const sessions = Effect.promise(async () => {
  const count = async () =>
    (await admin<Array<{ n: number }>>`select count(*)::int as n from pg_stat_activity where application_name = ${applicationName}`)[0]!.n
  let n = await count()
  for (let tries = 0; tries < 50; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const again = await count()
    if (again === n) return n
    n = again
  }
  return n
})

/** `src`'s rows as their `payload` column. */
const payloads = <R>(src: Source.Source<postgres.Row, R>): Source.Source<string, R> => ({
  ...src,
  open: (ctx) =>
    Effect.map(src.open(ctx), (reader: Source.SourceReader<postgres.Row>) => ({
      ...reader,
      pull: Effect.map(reader.pull, (batch) => batch?.map((row) => row.payload as string))
    }))
})

/** A table holding `records` (keys spread with gaps), read in 5 splits. */
const sourceOf = (records: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const table = yield* freshTable("id bigint primary key, payload text not null")
    yield* Effect.promise(() => admin`insert into ${admin(table)} ${admin(records.map((payload, i) => ({ id: i * 3 + 7, payload })))}`)
    return payloads(PostgresSource.query({ table, splitColumn: "id", splits: 5 }))
  })

/** `sink` taking each string as the record `of(payload)` (by default the row `{ payload }`). */
const ofPayloads = <A, R>(sink: Sink.Sink<A, R>, of: (payload: string) => A): Sink.Sink<string, R> =>
  Sink.make({
    name: sink.name,
    open: (ctx) =>
      Effect.map(sink.open(ctx) as Effect.Effect<Sink.SinkWriter<A>>, (writer) => ({
        ...writer,
        write: (batch: ReadonlyArray<string>) => writer.write(batch.map(of))
      }))
  }) as unknown as Sink.Sink<string, R>

/** A sink into a fresh table, and the payloads committed there. */
const sinkInto = <A = postgres.Row>(
  columns: string,
  make: (table: string) => Sink.Sink<A, PostgresClient.PostgresClient>,
  of: (payload: string) => A = (payload) => ({ payload }) as A
) => () =>
  Effect.map(freshTable(columns), (table) => ({
    sink: ofPayloads(make(table), of),
    committed: Effect.promise(async () => (await admin.unsafe<Array<{ payload: string }>>(`select payload from ${table}`)).map((r) => r.payload))
  }))

/**
 * Restarts the server (`pg_ctlcluster … restart`) and resolves once it accepts connections: only
 * with TRIBUTARY_RESTART_TESTS set, as `npm test` runs them after every other test file.
 */
const restart = process.env.TRIBUTARY_RESTART_TESTS
  ? Effect.promise(async () => {
    const { execSync } = await import("node:child_process")
    const version = execSync("ls /etc/postgresql", { encoding: "utf8" }).trim().split("\n")[0]
    execSync(`pg_ctlcluster --skip-systemctl-redirect ${version} main restart`, { stdio: "ignore" })
    for (let i = 0; i < 300; i++) {
      try {
        return void execSync("pg_isready -h 127.0.0.1 -p 5432 -q")
      } catch {
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  })
  : undefined

const nodeOnly = describe.skipIf("Bun" in globalThis || "Deno" in globalThis)

nodeOnly("PostgreSQL connectors", () => {
  afterAll(async () => {
    for (const table of tables) await admin.unsafe(`drop table if exists ${table}`)
    await admin.end()
  })

  Conformance.source(api, { name: "PostgresSource.query", layer, sessions, restart, rescalable: true, source: sourceOf })

  Conformance.sink(api, {
    name: "PostgresSink.exactlyOnce",
    layer,
    sessions,
    // A restart under its writes can leave a statement of the client's unanswered (see the plugin
    // README): the short callTimeout counts it as a lost connection.
    restart,
    guarantee: "exactly-once",
    sink: sinkInto("payload text not null", (table) => PostgresSink.exactlyOnce({ table, callTimeout: "5 seconds" }))
  })

  Conformance.sink(api, {
    name: "PostgresSink.insert",
    layer,
    sessions,
    guarantee: "at-least-once",
    sink: sinkInto("payload text not null", (table) => PostgresSink.insert({ table }))
  })

  Conformance.sink(api, {
    name: "PostgresSink.changelog",
    layer,
    sessions,
    guarantee: "at-least-once",
    sink: sinkInto<PostgresSink.Change>(
      "payload text primary key",
      (table) => PostgresSink.changelog({ table, key: "payload" }),
      (payload) => ({ op: "insert", after: { payload } })
    )
  })

  Conformance.sink(api, {
    name: "PostgresSink.upsert",
    layer,
    sessions,
    guarantee: "at-least-once",
    sink: sinkInto("payload text primary key, n integer", (table) => PostgresSink.upsert({ table, key: "payload" }))
  })

  it("the exactly-once sink fences off an older execution once a newer one opened it", async () => {
    const fenced = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const table = yield* freshTable("payload text not null")
      const sink = PostgresSink.exactlyOnce({ table })
      const job = `fencing-${run}`
      yield* sink.open({ instance: 0, instances: 1, job, execution: 2 }) as Effect.Effect<unknown, unknown, PostgresClient.PostgresClient>
      // An instance of execution 1, restarting from snapshot 1 after execution 2 opened the sink.
      return yield* Effect.flip(sink.open({ instance: 0, instances: 1, job, execution: 1, restoredSnapshot: 1 }) as Effect.Effect<unknown, unknown, PostgresClient.PostgresClient>)
    })).pipe(Effect.provide(layer)))
    expect(fenced).toMatchObject({ _tag: "FencedError", execution: 1, newest: 2 })
  })

  it("inserts a batch of more parameters than a statement takes, and upserts replace rows by key", async () => {
    const rows = Array.from({ length: 40_000 }, (_, i) => ({ id: i, payload: `p${i}` }))
    const { inserted, upserted } = await Effect.runPromise(Effect.gen(function*() {
      const table = yield* freshTable("id integer primary key, payload text not null")
      yield* Tributary.run(Pipeline.from(Sources.fromIterable(rows)).pipe(Stage.writeTo(PostgresSink.insert({ table }))), { batchSize: 40_000 })
      const inserted = yield* Effect.promise(() => admin.unsafe(`select count(*)::int as n from ${table}`))
      const changes = [{ id: 1, payload: "a" }, { id: 2, payload: "b" }, { id: 1, payload: "c" }, { id: 50_000, payload: "d" }]
      yield* Tributary.run(Pipeline.from(Sources.fromIterable(changes)).pipe(Stage.writeTo(PostgresSink.upsert({ table, key: "id" }))))
      const upserted = yield* Effect.promise(() => admin.unsafe(`select id, payload from ${table} where id in (0, 1, 2, 50000) order by id`))
      return { inserted: inserted[0]!.n, upserted: [...upserted] }
    }).pipe(Effect.provide(layer)))
    expect(inserted).toBe(40_000)
    expect(upserted).toEqual([{ id: 0, payload: "p0" }, { id: 1, payload: "c" }, { id: 2, payload: "b" }, { id: 50_000, payload: "d" }])
  })

  it("a changelog sink applies inserts, updates and deletes, the last change of a key winning", async () => {
    const changes: Array<PostgresSink.Change> = [
      { op: "insert", after: { id: 1, payload: "a" } },
      { op: "insert", after: { id: 2, payload: "b" } },
      { op: "insert", after: { id: 3, payload: "c" } },
      { op: "update", before: { id: 1 }, after: { id: 1, payload: "a2" } },
      { op: "delete", before: { id: 2 } },
      { op: "delete", before: { id: 3 } },
      { op: "insert", after: { id: 3, payload: "c2" } },
      { op: "delete", before: { id: 4 } }
    ]
    const table = await Effect.runPromise(freshTable("id integer primary key, payload text not null"))
    await admin.unsafe(`insert into ${table} values (4, 'd'), (5, 'e')`)
    // One batch, then one change per batch: both must end the same.
    for (const batchSize of [64, 1]) {
      await Effect.runPromise(
        Tributary.run(Pipeline.from(Sources.fromIterable(changes)).pipe(Stage.writeTo(PostgresSink.changelog({ table, key: "id" }))), { batchSize })
          .pipe(Effect.provide(layer))
      )
      expect([...await admin.unsafe(`select id, payload from ${table} order by id`)]).toEqual([
        { id: 1, payload: "a2" },
        { id: 3, payload: "c2" },
        { id: 5, payload: "e" }
      ])
    }
  })

  const runJob = <A>(src: Source.Source<A, PostgresClient.PostgresClient>, batchSize = 64) =>
    Effect.gen(function*() {
      const out = Sinks.collect<A>()
      yield* Tributary.run(Pipeline.from(src).pipe(Stage.writeTo(out)), { batchSize })
      return out.items
    }).pipe(Effect.provide(layer))

  it("reads a table larger than a batch, with a query, each row once and whole", async () => {
    const rows = await Effect.runPromise(Effect.gen(function*() {
      const table = yield* freshTable("id integer primary key, payload text not null, n integer not null")
      yield* Effect.promise(() => admin.unsafe(`insert into ${table} select i, 'p' || i, i * 2 from generate_series(1, 1000) i`))
      return yield* runJob(PostgresSource.query({ query: `select id, payload, n + 1 as m from ${table}`, splitColumn: "id", splits: 3 }), 64)
    }))
    expect(rows.length).toBe(1000)
    expect([...rows].sort((a, b) => a.id - b.id)).toEqual(Array.from({ length: 1000 }, (_, i) => ({ id: i + 1, payload: `p${i + 1}`, m: 2 * (i + 1) + 1 })))
  })

  it("splits smaller than a batch, read behind a slow stage (their queries end before the next pull), each row once", async () => {
    const rows = await Effect.runPromise(Effect.gen(function*() {
      const table = yield* freshTable("id integer primary key")
      yield* Effect.promise(() => admin.unsafe(`insert into ${table} select i from generate_series(0, 99) i`))
      const out = Sinks.collect<postgres.Row>()
      yield* Tributary.run(Pipeline.from(PostgresSource.query({ table, splitColumn: "id", splits: 4 })).pipe(
        Stage.mapEffect((r: postgres.Row) => Effect.as(Effect.sleep(1), r), { concurrency: 4 }),
        Stage.writeTo(out)
      ))
      return out.items
    }).pipe(Effect.provide(layer)))
    expect(rows.map((r) => r.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i))
  })

  it("every split reads the table as it was when the job started, though it changes during the read", async () => {
    const rows = await Effect.runPromise(Effect.gen(function*() {
      const table = yield* freshTable("id integer primary key, payload text not null")
      yield* Effect.promise(() => admin.unsafe(`insert into ${table} select i, 'old' from generate_series(1, 400) i`))
      let changed = false
      // Once the first rows are read, every row changes and more are added: splits opened later must not see it.
      const change = Effect.promise(() => admin.unsafe(`update ${table} set payload = 'new'; insert into ${table} select i, 'new' from generate_series(401, 500) i`))
      const out = Sinks.collect<postgres.Row>()
      yield* Tributary.run(Pipeline.from(PostgresSource.query({ table, splitColumn: "id", splits: 4 })).pipe(
        Stage.mapEffect((row: postgres.Row) => changed ? Effect.succeed(row) : Effect.as(Effect.andThen(Effect.sync(() => (changed = true)), change), row)),
        Stage.writeTo(out)
      ), { batchSize: 16 })
      return out.items
    }).pipe(Effect.provide(layer)))
    expect(rows.length).toBe(400)
    expect(rows.every((r) => r.payload === "old")).toBe(true)
  })

  it("a missing table or column, or a split column not of integers, fails at start with an error naming it", async () => {
    const failure = (options: PostgresSource.QueryOptions) =>
      Effect.runPromise(Effect.flip(runJob(PostgresSource.query(options))).pipe(Effect.map((e) => String((e as Error).message) + JSON.stringify(e))))
    const table = await Effect.runPromise(freshTable("id bigint primary key"))
    expect(await failure({ table: "trib_no_such_table", splitColumn: "id" })).toMatch(/trib_no_such_table.*no such table/)
    expect(await failure({ table, splitColumn: "nope" })).toMatch(/split by nope: no such column/)
    const text = await Effect.runPromise(freshTable("name text primary key"))
    await admin.unsafe(`insert into ${text} values ('a'), ('b')`)
    expect(await failure({ table: text, splitColumn: "name" })).toMatch(/cannot split .* by name into 8: an integer column/)
  })

  describe("PostgresLookup.join", () => {
    // 1000 orders of customers 0..49 (id 50 has no row), in batches of 16 at parallelism 1.
    const orders = Array.from({ length: 1000 }, (_, i) => ({ order: i, customer: i % 51 }))
    const customers = Effect.gen(function*() {
      const table = yield* freshTable("id integer primary key, name text not null")
      yield* Effect.promise(() => admin`insert into ${admin(table)} ${admin(Array.from({ length: 50 }, (_, id) => ({ id, name: `c${id}` })))}`)
      return table
    })
    /** The enriched orders, and how many lookup queries reached the server. */
    const enrich = (cache?: PostgresLookup.LookupOptions<unknown, unknown>["cache"]) =>
      Effect.runPromise(Effect.gen(function*() {
        const table = yield* customers
        let queries = 0
        const counting = PostgresClient.layer({ url, applicationName, options: { debug: (_c, query) => void (query.includes("any($1") && queries++) } })
        const out = Sinks.collect<{ order: number; name: string | undefined }>()
        yield* Tributary.run(Pipeline.from(Sources.fromIterable(orders)).pipe(
          PostgresLookup.join({ table, key: "id", keyOf: (o) => o.customer, columns: ["name"], cache, join: (o, row) => ({ order: o.order, name: row?.name as string | undefined }) }),
          Stage.writeTo(out)
        ), { batchSize: 16, parallelism: 1 }).pipe(Effect.provide(counting))
        return { out: [...out.items].sort((a, b) => a.order - b.order), queries }
      }))
    const expected = orders.map((o) => ({ order: o.order, name: o.customer < 50 ? `c${o.customer}` : undefined }))

    it("one query per batch for its keys; a key without a row joins undefined", async () => {
      const { out, queries } = await enrich()
      expect(out).toEqual(expected)
      expect(queries).toBe(Math.ceil(orders.length / 16))
    })

    it("a cache asks only for keys it does not hold, bounded by its size and age", async () => {
      // The first four batches hold all 51 keys; after them, every key is cached.
      const cached = await enrich({ ttl: "1 hour", maxSize: 100 })
      expect(cached.out).toEqual(expected)
      expect(cached.queries).toBe(4)
      const small = await enrich({ ttl: "1 hour", maxSize: 10 })
      expect(small.out).toEqual(expected)
      expect(small.queries).toBeGreaterThan(30)
      const expired = await enrich({ ttl: "0 millis", maxSize: 100 })
      expect(expired.queries).toBe(Math.ceil(orders.length / 16))
    })

    it("a missing table or key column fails at start, naming it", async () => {
      const failure = (table: string, key: string) =>
        Effect.runPromise(Effect.flip(Tributary.run(Pipeline.from(Sources.fromIterable(orders)).pipe(
          PostgresLookup.join({ table, key, keyOf: (o) => o.customer, join: (o) => o }),
          Stage.writeTo(Sinks.collect())
        ))).pipe(Effect.provide(layer)))
      expect(String(await failure("trib_no_such_table", "id"))).toMatch(/lookup in trib_no_such_table: cannot read the key's type.*trib_no_such_table/)
      const table = await Effect.runPromise(customers)
      expect(String(await failure(table, "nope"))).toContain(`lookup in ${table}: no column nope`)
    })
  })

  it("a wrong user fails with an error naming the server and the user", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.gen(function*() {
        const table = yield* freshTable("id bigint primary key")
        const out = Sinks.collect<postgres.Row>()
        yield* Tributary.run(Pipeline.from(PostgresSource.query({ table, splitColumn: "id" })).pipe(Stage.writeTo(out)))
      }).pipe(Effect.provide(PostgresClient.layer({ url, user: "trib_no_such_user" })))
    )
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(exit)).toMatch(/127\.0\.0\.1:5432\/test as trib_no_such_user: cannot connect/)
  })
})
