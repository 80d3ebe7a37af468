/** The MySQL / MariaDB plugin against the real server (MariaDB 10.11 on 127.0.0.1:3306, db `test`). */
import { Effect, Schema, SchemaTransformation, type Scope } from "effect"
import * as mysql from "mysql2/promise"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ConnectorError, Pipeline, type Sink, Sinks, Stage, Tributary } from "../core/src/index.ts"
import { Conformance } from "../core/src/testing.ts"
import { MysqlClient, MysqlSink, MysqlSource, MysqlXaSink } from "../plugins/mysql/src/index.ts"

const api = { describe, it, expect } as unknown as Conformance.TestApi
const tag = `${Date.now() % 1e8}_${Math.floor(Math.random() * 1e6)}`
// A user of its own, so its sessions can be counted while other tests use the server.
const user = `trib_${tag}`
const password = "s3cret"
const layer = MysqlClient.layer({ user, password })
let tables = 0
const fresh = (what: string) => `trib_${what}_${tag}_${tables++}`

let admin: mysql.Connection
const sql = <A = Array<Record<string, unknown>>>(text: string, values?: ReadonlyArray<unknown>) =>
  Effect.promise(() => admin.query(text, values as Array<unknown>).then(([rows]) => rows as A))

/** The user's sessions once closing ones have gone (the server drops a closed session a moment later). */
const sessions = Effect.gen(function*() {
  let last = -1
  for (let i = 0; i < 40; i++) {
    const [{ n }] = yield* sql<Array<{ n: number }>>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ?", [user])
    if (n === last) return n
    last = n
    yield* Effect.sleep(50)
  }
  return last
})

/** A table of `records` keyed by `id` = 3 × index (keys with gaps). */
const sourceTable = (records: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const table = fresh("src")
    yield* sql(`CREATE TABLE ${table} (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL)`)
    if (records.length > 0) yield* sql(`INSERT INTO ${table} (id, v) VALUES ?`, [records.map((r, i) => [3 * i, r])])
    return table
  })

const AsString = Schema.Struct({ v: Schema.String }).pipe(
  Schema.decodeTo(Schema.String, SchemaTransformation.transform({ decode: (r: { readonly v: string }) => r.v, encode: (v: string) => ({ v }) }))
)

const run = <A>(effect: Effect.Effect<A, unknown, MysqlClient.MysqlClient>) => Effect.runPromise(Effect.provide(effect, layer) as Effect.Effect<A, unknown>)

describe.skipIf("Bun" in globalThis || "Deno" in globalThis)("MySQL / MariaDB plugin", () => {
  beforeAll(async () => {
    admin = await mysql.createConnection({ host: "127.0.0.1", user: "root", database: "test" })
    await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`)
    await admin.query(`CREATE USER '${user}'@'localhost' IDENTIFIED BY '${password}'`)
    await admin.query(`GRANT ALL PRIVILEGES ON *.* TO '${user}'@'%'`)
    await admin.query(`GRANT ALL PRIVILEGES ON *.* TO '${user}'@'localhost'`)
  })
  afterAll(async () => {
    // XA transactions a failed test left prepared (only these tests use the TRIB format id) would lock the tables.
    const [prepared] = await admin.query<Array<mysql.RowDataPacket>>("XA RECOVER")
    for (const p of prepared.filter((p) => Number(p.formatID) === 0x54524942)) {
      const data = String(p.data)
      await admin.query(`XA ROLLBACK ?, ?, ${p.formatID}`, [data.slice(0, p.gtrid_length), data.slice(p.gtrid_length)])
    }
    const [rows] = await admin.query<Array<mysql.RowDataPacket>>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'test' AND table_name LIKE ?", [`trib_%_${tag}_%`])
    for (const { t } of rows) await admin.query(`DROP TABLE ${t}`)
    await admin.query(`DROP TABLE IF EXISTS trib_xa_${tag}, trib_xa_${tag}_epochs`)
    await admin.query(`DROP USER '${user}'@'%'`)
    await admin.query(`DROP USER '${user}'@'localhost'`)
    await admin.end()
  })

  Conformance.source(api, {
    name: "MysqlSource.query",
    layer,
    sessions,
    rescalable: true,
    source: (records) => Effect.flatMap(sourceTable(records), (table) => MysqlSource.query({ table, key: "id", splits: 7, schema: AsString }))
  })

  const committedOf = (table: string) => Effect.map(sql<Array<{ v: string }>>(`SELECT v FROM ${table}`), (rows) => rows.map((r) => r.v))

  Conformance.sink(api, {
    name: "MysqlXaSink.exactlyOnce",
    layer,
    sessions,
    guarantee: "exactly-once",
    sink: () =>
      Effect.gen(function*() {
        // No key: a record written twice would show twice.
        const table = fresh("xa")
        yield* sql(`CREATE TABLE ${table} (v VARCHAR(64) NOT NULL)`)
        const sink = yield* MysqlXaSink.exactlyOnce({ table, columns: ["v"], values: (r: string) => [r], stateTable: `trib_xa_${tag}` })
        return { sink, committed: committedOf(table) }
      })
  })

  Conformance.sink(api, {
    name: "MysqlSink.upsert",
    layer,
    sessions,
    guarantee: "exactly-once",
    sink: () =>
      Effect.gen(function*() {
        const table = fresh("up")
        yield* sql(`CREATE TABLE ${table} (v VARCHAR(64) PRIMARY KEY, n INT NOT NULL)`)
        const sink = yield* MysqlSink.upsert({ table, columns: ["v", "n"], key: ["v"], values: (r: string) => [r, 1] })
        return { sink, committed: committedOf(table) }
      })
  })

  it("a split's connection closes when the split is finished, not when the job ends", async () => {
    const records = Array.from({ length: 700 }, (_, i) => `record-${i}`)
    const open = await run(Effect.gen(function*() {
      const table = yield* sourceTable(records)
      const source = yield* MysqlSource.query({ table, key: "id", splits: 7, schema: AsString })
      let atLast = -1
      // At the last record (of the last split), the six splits before it are finished.
      const probe = (r: string) => r === records.at(-1) ? Effect.map(sessions, (n) => ((atLast = n), r)) : Effect.succeed(r)
      yield* Tributary.run(Pipeline.from(source).pipe(Stage.mapEffect(probe), Stage.writeTo(Sinks.collect())), { parallelism: 1 })
      return atLast
    }))
    expect(open).toBe(1)
  }, 30_000)

  it("splits a date column: every row once, in key order within its split", async () => {
    const rows = await run(Effect.gen(function*() {
      const table = fresh("dates")
      yield* sql(`CREATE TABLE ${table} (at DATETIME(3) PRIMARY KEY, v INT NOT NULL)`)
      const base = Date.UTC(2026, 0, 1)
      yield* sql(`INSERT INTO ${table} (at, v) VALUES ?`, [Array.from({ length: 500 }, (_, i) => [new Date(base + i * 61_001), i])])
      const source = yield* MysqlSource.query({ table, key: "at", splits: 5, fetchSize: 30 })
      const out = Sinks.collect<Record<string, unknown>>()
      yield* Tributary.run(Pipeline.from(source).pipe(Stage.writeTo(out)), { parallelism: 2, batchSize: 7 })
      return out.items
    }))
    expect(rows.map((r) => r.v as number).sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i))
    expect(rows.every((r) => r.at instanceof Date)).toBe(true)
  }, 30_000)

  it("a row that does not decode goes to the dead letters with its split and position; without them the job fails naming table, split, position and row", async () => {
    const Row = Schema.Struct({ id: Schema.Number, v: Schema.String.check(Schema.isPattern(/^record-/)) })
    const { letters, ids, failure } = await run(Effect.gen(function*() {
      const table = yield* sourceTable(["record-0", "record-1", "bad", "record-3"])
      const deadLetters = Sinks.collect<Stage.DeadLetter>()
      const out = Sinks.collect<{ readonly id: number }>()
      const source = yield* MysqlSource.query({ table, key: "id", splits: 1 })
      yield* Tributary.run(Pipeline.from(source).pipe(Stage.decode(Row, { deadLetters }), Stage.writeTo(out)), { batchSize: 2 })
      const typed = yield* MysqlSource.query({ table, key: "id", splits: 1, schema: Row })
      const failure = yield* Effect.flip(Tributary.run(Pipeline.from(typed).pipe(Stage.writeTo(Sinks.collect())), { batchSize: 2 }))
      return { letters: deadLetters.items, ids: out.items.map((r) => r.id), failure }
    }))
    expect(ids).toEqual([0, 3, 9])
    expect(letters.map((l) => [l.record, l.split, l.position, l.index])).toEqual([[{ id: 6, v: "bad" }, expect.stringContaining("trib_src_"), 3, 0]])
    expect(String(failure.message)).toMatch(/table trib_src_\w+, split trib_src_\w+\.id\[-inf,\+inf\), after key 3: row \{"id":6,"v":"bad"\} does not decode/)
  }, 30_000)

  it("a missing table or column is named at the start, a key outside the columns at construction; a wrong password fails at once with a ConnectorError naming server and user", async () => {
    const messages = await run(Effect.gen(function*() {
      const table = yield* sourceTable(["a"])
      const read = (options: Parameters<typeof MysqlSource.query>[0]) =>
        Effect.flatMap(MysqlSource.query(options), (source) => Effect.flip(Tributary.run(Pipeline.from(source).pipe(Stage.writeTo(Sinks.collect())))))
      const noTable = yield* read({ table: `${table}_missing`, key: "id" })
      const noColumn = yield* read({ table, key: "id", columns: ["nope"] })
      const noKey = yield* Effect.flip(MysqlSink.upsert({ table, columns: ["v"], key: ["id"] }))
      return [noTable.message, noColumn.message, noKey.message]
    }))
    expect(messages[0]).toMatch(/mysql:\/\/trib_\w+@127\.0\.0\.1:3306\/test: reading table trib_src_\w+_missing by id: Table 'test\.trib_src_\w+_missing' doesn't exist/)
    expect(messages[1]).toMatch(/Unknown column 'nope'/)
    expect(messages[2]).toMatch(/upsert into table trib_src_\w+: key column id is not among the columns v/)
    const wrong = await Effect.runPromise(Effect.provide(
      Effect.flatMap(MysqlSource.query({ table: "any", key: "id" }), (source) => Effect.flip(Tributary.run(Pipeline.from(source).pipe(Stage.writeTo(Sinks.collect()))))),
      MysqlClient.layer({ user, password: "wrong" })
    ) as unknown as Effect.Effect<Error>)
    expect(wrong).toBeInstanceOf(ConnectorError)
    expect(wrong.message).toContain(`gave up on mysql://${user}@127.0.0.1:3306/test after 1 attempts: Access denied for user '${user}'`)
  }, 30_000)

  it("a prepared XA transaction survives its connection; on restore it is committed when the snapshot covers it, rolled back when not", async () => {
    const result = await run(Effect.gen(function*() {
      const table = fresh("xr")
      yield* sql(`CREATE TABLE ${table} (v VARCHAR(64) NOT NULL)`)
      const sink = yield* MysqlXaSink.exactlyOnce({ table, columns: ["v"], values: (r: string) => [r], stateTable: `trib_xa_${tag}` })
      /** Instance 0 of execution `execution`, restored from `restoredSnapshot`, in a scope of its own (closed: its connections are gone). */
      const opened = (execution: number, restoredSnapshot: number | undefined, f: (w: Sink.SinkWriter<string>) => Effect.Effect<void, unknown>) =>
        Effect.scoped(Effect.flatMap(sink.open({ instance: 0, instances: 1, job: `xr-${tag}`, execution, restoredSnapshot }) as Effect.Effect<Sink.SinkWriter<string>, unknown, MysqlClient.MysqlClient | Scope.Scope>, f))
      // Snapshot 1 and 2 prepared, never committed: the "crash" closes the connections.
      yield* opened(1, undefined, (w) =>
        Effect.gen(function*() {
          yield* w.write(["one"])
          yield* w.prepare!(1)
          yield* w.write(["two"])
          yield* w.prepare!(2)
        }))
      const prepared = yield* sql<Array<unknown>>("XA RECOVER")
      const before = yield* committedOf(table)
      // Restored from snapshot 1: its transaction is committed, that of snapshot 2 rolled back.
      yield* opened(2, 1, () => Effect.void)
      return { prepared: prepared.length, before, after: yield* committedOf(table), left: (yield* sql<Array<unknown>>("XA RECOVER")).length }
    }))
    expect(result.prepared).toBeGreaterThan(1)
    expect(result.before).toEqual([])
    expect(result.after).toEqual(["one"])
    expect(result.left).toBe(result.prepared - 2)
  }, 30_000)

  // Restarts the shared server: only where nothing else uses it.
  it.skipIf(!process.env.TRIBUTARY_RESTART_TESTS)("the server restarting mid-read: the split reopens at its position (the kit's retry), each record once", async () => {
    const records = Array.from({ length: 3000 }, (_, i) => `record-${i}`)
    const { items, restarts, retries } = await run(Effect.scoped(Effect.gen(function*() {
      const table = yield* sourceTable(records)
      const source = yield* MysqlSource.query({ table, key: "id", splits: 2, fetchSize: 50, schema: AsString, retry: { times: 12, maxDelay: "2 seconds" } })
      const out = Sinks.collect<string>()
      let seen = 0
      const job = yield* Tributary.submit(Pipeline.from(source).pipe(Stage.mapEffect((r: string) => Effect.as(Effect.sleep(0), (seen++, r))), Stage.writeTo(out)), { batchSize: 50 })
      while (seen < 1000) yield* Effect.sleep(1)
      yield* Effect.promise(() => restartServer())
      yield* job.join
      const metrics = yield* job.metrics
      return { items: out.items, restarts: metrics.restarts, retries: metrics.instances.reduce((n, i) => n + i.retries, 0) }
    })))
    expect([...items].sort()).toEqual([...records].sort())
    expect(restarts).toBe(0)
    expect(retries).toBeGreaterThan(0)
  }, 120_000)
})

/** `mariadb-admin shutdown`, then the daemon started again; resolves once port 3306 answers. */
const restartServer = async () => {
  const { execSync } = await import("node:child_process")
  execSync("mariadb-admin -uroot shutdown")
  execSync("start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd")
  for (let i = 0; i < 300; i++) {
    try {
      const c = await mysql.createConnection({ host: "127.0.0.1", user: "root", database: "test" })
      admin = c
      return
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
