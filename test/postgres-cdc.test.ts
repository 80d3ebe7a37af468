/** PostgreSQL change data capture against the real server (PGURL, default 127.0.0.1:5432/test; wal_level=logical). */
import { Effect, Fiber, Layer, Schema } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import postgres from "postgres"
import { afterAll, describe, expect, it } from "vitest"
import { Aggregate, Pipeline, Platform, Sinks, SnapshotStore, Source, Stage, Tributary, Window } from "../core/src/index.ts"
import * as Conformance from "../core/src/testing/Conformance.ts"
import type { JobOptions } from "../core/src/job/Job.ts"
import { PostgresCdc } from "../plugins/postgres/src/index.ts"
import { committedLines, runtimeArgs } from "./cluster-helpers.ts"

const url = process.env.PGURL ?? "postgres://postgres@127.0.0.1:5432/test"
const sql = postgres(url, { max: 2, onnotice: () => {} })
const prefix = `cdc_${Platform.runtime}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`
const slots: Array<string> = []
const publications: Array<string> = []
const tables: Array<string> = []

/** A table `id int primary key, v text` with its publication and a slot name, all unique to the test. */
const fixture = async (name: string, full = true) => {
  const table = `${prefix}_${name}`
  tables.push(table)
  publications.push(table)
  slots.push(table)
  await sql.unsafe(`create table ${table} (id int primary key, v text)`)
  if (full) await sql.unsafe(`alter table ${table} replica identity full`)
  await sql.unsafe(`create publication ${table} for table ${table}`)
  return { table, slot: table, publication: table, qualified: `public.${table}` }
}

const dropSlot = async (slot: string) => {
  // The slot is held by the job's connection for a moment after it stops.
  for (let i = 0; i < 50; i++) {
    const [row] = await sql`select active from pg_replication_slots where slot_name = ${slot}`
    if (!row) return
    if (!row.active) {
      await sql`select pg_drop_replication_slot(${slot})`.catch(() => {})
      continue
    }
    // Still held after 3 s (a test that failed left its job running): end that connection.
    if (i >= 30) await sql`select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = ${slot}`
    await new Promise((r) => setTimeout(r, 100))
  }
}

afterAll(async () => {
  for (const slot of slots) await dropSlot(slot)
  for (const p of publications) await sql.unsafe(`drop publication if exists ${p}`)
  for (const t of tables) await sql.unsafe(`drop table if exists ${t}`)
  await sql.end()
})

const run = <A, E>(effect: Effect.Effect<A, E, any>) => Effect.runPromise(Effect.scoped(effect).pipe(Effect.provide(Platform.layer)) as Effect.Effect<A, E>)
const until = (check: () => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1500 && !check(); i++) yield* Effect.sleep(10)
    if (!check()) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
  })
const exec = (statements: ReadonlyArray<string>) => Effect.promise(() => sql.begin((tx) => statements.reduce((p, s) => p.then(() => tx.unsafe(s)), Promise.resolve([] as unknown))))
const confirmed = (slot: string) =>
  Effect.promise(async () => (await sql`select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = ${slot}`)[0]?.lsn as string)
/**
 * Waits until the job's connection streams from `slot`: changes from then on are captured. A slot
 * being created is active too, but has no confirmed position until it is consistent (which waits
 * for the transactions running then, other tests' too).
 */
const streaming = (slot: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 3000; i++) {
      const [row] = yield* Effect.promise(() =>
        sql`select active and confirmed_flush_lsn is not null as streaming from pg_replication_slots where slot_name = ${slot}`
      )
      if (row?.streaming) return
      yield* Effect.sleep(10)
    }
    return yield* Effect.die(new Error(`slot ${slot} never became active`))
  })
const lsn = (text: string) => {
  const [hi, lo] = text.split("/")
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)
}

/** Applies changes to a map by id, as a replica would. */
const apply = (changes: ReadonlyArray<PostgresCdc.Change>) => {
  const rows = new Map<string, PostgresCdc.Row>()
  for (const c of changes) {
    if (c.op === "delete") rows.delete(c.before!.id!)
    else {
      if (c.before && c.before.id !== c.after!.id) rows.delete(c.before.id!)
      rows.set(c.after!.id!, c.after!)
    }
  }
  return rows
}
const tableRows = async (table: string) =>
  new Map((await sql.unsafe<Array<{ id: string; v: string | null }>>(`select id::text, v from ${table}`)).map((r) => [r.id, { id: r.id, v: r.v }]))

/** The transactions the tests run: inserts, updates (one changing the key), deletes. */
const transactions = (from: number, n: number): Array<Array<string>> =>
  Array.from({ length: n }, (_, k) => {
    const i = from + k
    return [
      `insert into T values (${3 * i}, 'a${i}'), (${3 * i + 1}, 'b${i}'), (${3 * i + 2}, null)`,
      `update T set v = 'u${i}' where id = ${3 * i}`,
      `delete from T where id = ${3 * i + 1}`,
      ...(i > 0 ? [`update T set id = ${-i} where id = ${3 * (i - 1) + 2}`] : [])
    ]
  })
const withTable = (txs: Array<Array<string>>, table: string) => txs.map((tx) => tx.map((s) => s.replace(" T ", ` ${table} `)))
const changesPerTx = (i: number) => (i > 0 ? 6 : 5)

const describeNode = describe.skipIf("Bun" in globalThis || "Deno" in globalThis)

/** The `v` of each change's row: the conformance suite's records. */
const values = (src: Source.Source<PostgresCdc.Change>): Source.Source<string> =>
  Source.make({
    ...src,
    eventTime: undefined,
    open: (ctx) => Effect.map(src.open(ctx), (reader) => ({ ...reader, pull: Effect.map(reader.pull, (b) => b?.map((c) => c.after!.v!)) }))
  }) as Source.Source<string>

let fixtures = 0
// A bounded CDC source of records committed in transactions of 50 rows after its slot was created.
Conformance.source({ describe: describeNode, it, expect }, {
  name: "PostgresCdc.source (bounded)",
  layer: Layer.empty,
  source: (records) =>
    Effect.promise(async () => {
      const { table, slot, publication } = await fixture(`c${fixtures++}`)
      await sql`select pg_create_logical_replication_slot(${slot}, 'pgoutput')`
      for (let i = 0; i < records.length; i += 50) {
        await sql`insert into ${sql(table)} ${sql(records.slice(i, i + 50).map((v, k) => ({ id: i + k, v })))}`
      }
      return values(PostgresCdc.source({ slot, publication, url, bounded: true }))
    })
})

describeNode("PostgreSQL change data capture", () => {
  it("streams committed transactions whole and in commit order; applying them rebuilds the table", async () => {
    const { table, slot, publication, qualified } = await fixture("stream")
    const out = Sinks.collect<PostgresCdc.Change>()
    const txs = withTable(transactions(0, 12), table)
    const expected = txs.reduce((n, _, i) => n + changesPerTx(i), 0)
    await run(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(PostgresCdc.source({ slot, publication, url })).pipe(Stage.writeTo(out)), { batchSize: 4 })
      yield* streaming(slot)
      for (const tx of txs) yield* exec(tx)
      yield* until(() => out.items.length >= expected, `${expected} changes`)
      yield* job.cancel
    }))
    expect(out.items.length).toBe(expected)
    expect(apply(out.items)).toEqual(await tableRows(table))
    // Grouped by transaction, in commit order, each in statement order.
    const groups: Array<Array<PostgresCdc.Change>> = []
    for (const c of out.items) {
      if (groups.at(-1)?.[0]!.lsn === c.lsn) groups.at(-1)!.push(c)
      else groups.push([c])
    }
    expect(groups.map((g) => g.length)).toEqual(txs.map((_, i) => changesPerTx(i)))
    expect(groups.map((g) => lsn(g[0]!.lsn))).toEqual(groups.map((g) => lsn(g[0]!.lsn)).sort((a, b) => (a < b ? -1 : 1)))
    expect(groups[1]!.map((c) => [c.op, c.table, c.before?.id ?? null, c.after?.id ?? null])).toEqual([
      ["insert", qualified, null, "3"],
      ["insert", qualified, null, "4"],
      ["insert", qualified, null, "5"],
      ["update", qualified, "3", "3"],
      ["delete", qualified, "4", null],
      ["update", qualified, "2", "-1"]
    ])
    expect(groups[1]![3]).toMatchObject({ before: { id: "3", v: "a1" }, after: { id: "3", v: "u1" } })
    expect(groups[1]![2]!.after).toEqual({ id: "5", v: null })
    expect(new Set(groups[1]!.map((c) => c.commitTime)).size).toBe(1)
    expect(Math.abs(groups[1]![0]!.commitTime - Date.now())).toBeLessThan(60_000)
  }, 60_000)

  it("restored from an exported snapshot: every change once; the slot confirms no more than the last complete snapshot", async () => {
    const { table, slot, publication } = await fixture("restore")
    // A slow store: the source reads on while its snapshot is being saved.
    const memory = SnapshotStore.memory()
    let saveDelay = 0
    const store: SnapshotStore.SnapshotStore = { ...memory, save: (s) => Effect.andThen(Effect.sleep(saveDelay), memory.save(s)) }
    const outs = [Sinks.collect<PostgresCdc.Change>({ transactional: true }), Sinks.collect<PostgresCdc.Change>({ transactional: true })]
    let seen = 0
    const pipeline = (i: number) =>
      Pipeline.from(PostgresCdc.source({ slot, publication, url, statusInterval: 50 })).pipe(
        Stage.map((c) => {
          seen++
          return c
        }),
        // The sink in a tasklet of its own: its acknowledgement completes a snapshot, the source reads on meanwhile.
        Stage.rebalance,
        Stage.writeTo(outs[i]!)
      )
    const options = (interval: string, initialSnapshot?: string): JobOptions => ({
      parallelism: 1,
      batchSize: 4,
      processingGuarantee: "exactly-once",
      snapshotInterval: interval as JobOptions["snapshotInterval"],
      snapshotStore: store,
      initialSnapshot
    })
    const count = (from: number, n: number) => Array.from({ length: n }, (_, k) => changesPerTx(from + k)).reduce((a, b) => a + b, 0)
    const result = await run(Effect.gen(function*() {
      const first = yield* Tributary.submit(pipeline(0), options("1 hour"))
      yield* streaming(slot)
      for (const tx of withTable(transactions(0, 5), table)) yield* exec(tx)
      yield* until(() => seen >= count(0, 5), "the first changes")
      saveDelay = 1500
      const exporting = yield* Effect.forkChild(first.exportSnapshot("cdc-at"))
      yield* Effect.sleep("100 millis")
      // Read past the snapshot (while it is saved), never confirmed: they must come again after the restore.
      for (const tx of withTable(transactions(5, 4), table)) yield* exec(tx)
      yield* until(() => seen >= count(0, 9), "changes after the snapshot")
      yield* Fiber.join(exporting)
      saveDelay = 0
      const saved = (yield* SnapshotStore.latest(store, "cdc-at"))!.positions[0]![2] as { lsn: string; end: string }
      // The status updates after the snapshot's completion.
      yield* Effect.sleep("300 millis")
      const whileReadingOn = yield* confirmed(slot)
      yield* first.cancel
      // Changes while no job runs.
      for (const tx of withTable(transactions(9, 3), table)) yield* exec(tx)
      const second = yield* Tributary.submit(pipeline(1), options("50 millis", "cdc-at"))
      yield* until(() => outs[0]!.items.length + outs[1]!.items.length >= count(0, 12), "every change committed")
      yield* Effect.sleep("200 millis")
      yield* second.cancel
      return { saved, whileReadingOn }
    }))
    const all = [...outs[0]!.items, ...outs[1]!.items]
    expect(all.length).toBe(count(0, 12))
    expect(new Set(all.map((c) => `${c.lsn} ${c.op} ${JSON.stringify(c.before)} ${JSON.stringify(c.after)}`)).size).toBe(all.length)
    expect(apply(all)).toEqual(await tableRows(table))
    expect(result.saved.lsn).toBe(outs[0]!.items.at(-1)!.lsn)
    expect(result.whileReadingOn).toBe(result.saved.end)
  }, 60_000)

  it("a slot whose tables see no change still releases the WAL the rest of the database writes, once a snapshot covers it", async () => {
    const { table, slot, publication } = await fixture("quiet")
    const other = `${prefix}_busy`
    tables.push(other)
    await sql.unsafe(`create table ${other} (id int primary key, v text)`)
    const out = Sinks.collect<PostgresCdc.Change>({ transactional: true })
    const result = await run(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(PostgresCdc.source({ slot, publication, url, statusInterval: 50 })).pipe(Stage.writeTo(out)), {
        processingGuarantee: "exactly-once",
        snapshotInterval: "100 millis"
      })
      yield* streaming(slot)
      const before = yield* confirmed(slot)
      // Another table's transactions: WAL the slot decodes, nothing it emits.
      for (let i = 0; i < 20; i++) yield* exec([`insert into ${other} select g, 'x' from generate_series(${i * 100}, ${i * 100 + 99}) g`])
      const written = (yield* Effect.promise(() => sql`select pg_current_wal_lsn()::text as lsn`))[0]!.lsn as string
      let after = yield* confirmed(slot)
      for (let i = 0; i < 200 && lsn(after) < lsn(written); i++) {
        yield* Effect.sleep(50)
        after = yield* confirmed(slot)
      }
      // The published table's changes still come, once.
      for (const tx of withTable(transactions(0, 2), table)) yield* exec(tx)
      yield* until(() => out.items.length >= changesPerTx(0) + changesPerTx(1), "the changes after")
      yield* Effect.sleep("300 millis")
      yield* job.cancel
      return { before, written, after }
    }))
    expect(lsn(result.after)).toBeGreaterThanOrEqual(lsn(result.written))
    expect(lsn(result.before)).toBeLessThan(lsn(result.written))
    expect(out.items.length).toBe(changesPerTx(0) + changesPerTx(1))
    expect(apply(out.items)).toEqual(await tableRows(table))
  }, 60_000)

  it("a missing publication, a table outside it, a dropped slot, a lost connection, a TRUNCATE: a typed error naming it", async () => {
    const { slot, publication } = await fixture("errors")
    const failure = (options: PostgresCdc.PostgresCdcOptions, job: JobOptions = {}) =>
      run(Effect.flip(Tributary.run(Pipeline.from(PostgresCdc.source({ url, ...options })).pipe(Stage.writeTo(Sinks.collect())), job)))
    const noPublication = await failure({ slot, publication: `${publication}_nope` })
    expect(String(noPublication)).toContain(`publication "${publication}_nope" does not exist`)
    // What the database holds is met again by a restart: a job with a guarantee fails at once.
    const restarts = await run(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(PostgresCdc.source({ url, slot, publication: `${publication}_nope` })).pipe(Stage.writeTo(Sinks.collect())), {
        processingGuarantee: "exactly-once"
      })
      expect(String(yield* Effect.flip(job.join))).toContain("does not exist")
      return (yield* job.metrics).restarts
    }))
    expect(restarts).toBe(0)
    const noTable = await failure({ slot, publication, tables: ["elsewhere"] })
    expect(String(noTable)).toContain(`publication "${publication}" has no table public.elsewhere`)
    const store = SnapshotStore.memory()
    await run(store.save({ job: "cdc-dropped", id: 1, steps: [], ended: [], positions: [[`postgres cdc ${slot}`, 0, { lsn: "0/1", end: "0/1" }]] }))
    const dropped = await failure({ slot, publication }, { processingGuarantee: "exactly-once", snapshotStore: store, initialSnapshot: "cdc-dropped" })
    expect(String(dropped)).toContain(`slot "${slot}"): the replication slot was dropped: the changes after 0/1 are lost`)
    // The server ends the replication connection (an administrator, a restart): the source fails, naming it.
    const terminated = failure({ slot, publication })
    await run(streaming(slot))
    await sql`select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = ${slot}`
    expect(String(await terminated)).toMatch(new RegExp(`slot "${slot}"\\): (the server closed the replication stream|the replication stream failed|cannot start replication)`))
    // A TRUNCATE has no row changes to emit: the source fails naming the table rather than drift from it.
    const truncated = failure({ slot, publication })
    await run(streaming(slot))
    await sql.unsafe(`truncate ${publication}`)
    expect(String(await truncated)).toContain(`TRUNCATE of public.${publication} cannot be replicated as row changes`)
  }, 60_000)

  it("with snapshot: the rows already there as inserts, then the changes after, none twice at the seam", async () => {
    const { table, slot, publication } = await fixture("snapshot")
    await sql.unsafe(`insert into ${table} select i, 'old' || i from generate_series(1, 500) i`)
    const out = Sinks.collect<PostgresCdc.Change>()
    let next = 1000
    let writing = true
    // Inserts keep coming while the slot is created and the table read.
    const writer = (async () => {
      while (writing) await sql.unsafe(`insert into ${table} values (${next++}, 'new')`)
    })()
    await run(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(PostgresCdc.source({ slot, publication, url, snapshot: true })).pipe(Stage.writeTo(out)), {
        batchSize: 64
      })
      yield* until(() => out.items.length > 600, "the snapshot and some changes")
      writing = false
      yield* Effect.promise(() => writer)
      yield* exec([`update ${table} set v = 'last' where id = 1`])
      yield* until(() => out.items.at(-1)?.after?.v === "last", "the last change")
      yield* job.cancel
    }))
    const ids = out.items.filter((c) => c.op === "insert").map((c) => Number(c.after!.id))
    expect(ids.length).toBe(500 + next - 1000)
    expect(new Set(ids).size).toBe(ids.length)
    expect(apply(out.items)).toEqual(await tableRows(table))
  }, 60_000)

  it("decodes rows with a schema, a row that does not decode to dead letters; default replica identity: a delete's key, no update's before", async () => {
    const { table, slot, publication } = await fixture("decode", false)
    const out = Sinks.collect<{ readonly op: string; readonly before?: object | undefined; readonly after?: { readonly id: number } | undefined }>()
    const dead = Sinks.collect<unknown>()
    await run(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(PostgresCdc.source({ slot, publication, url })).pipe(
          Stage.decode(PostgresCdc.change(Schema.Struct({ id: Schema.NumberFromString, v: Schema.optional(Schema.Literal("ok")) })), { deadLetters: dead }),
          Stage.writeTo(out)
        ),
        {}
      )
      yield* streaming(slot)
      yield* exec([`insert into ${table} values (1, 'ok'), (2, 'bad'), (3, 'ok')`])
      yield* exec([`update ${table} set v = 'ok' where id = 1`, `delete from ${table} where id = 3`])
      yield* until(() => out.items.length + dead.items.length >= 5, "five changes")
      yield* job.cancel
    }))
    expect(out.items.map((c) => [c.op, c.before, c.after?.id])).toEqual([
      ["insert", undefined, 1],
      ["insert", undefined, 3],
      ["update", undefined, 1],
      ["delete", { id: 3 }, undefined]
    ])
    expect(dead.items.length).toBe(1)
  }, 60_000)

  it("a job in its own process SIGKILLed and started again from its snapshots: every change once", async () => {
    const { table, slot, publication } = await fixture("process")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-cdc-"))
    const [snapshots, out] = [path.join(dir, "snapshots"), path.join(dir, "out")]
    const job = (name: string, from?: string): ChildProcess =>
      spawn(process.execPath, [...runtimeArgs, path.join(import.meta.dirname, "fixtures", "postgres-cdc-process.ts"), slot, publication, snapshots, out, name, ...(from ? [from] : [])], {
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, PGURL: url }
      })
    const lines = () => (fs.existsSync(out) ? committedLines(out) : [])
    const total = (n: number) => Array.from({ length: n }, (_, i) => changesPerTx(i)).reduce((a, b) => a + b, 0)
    const txs = withTable(transactions(0, 30), table)
    let child = job("cdc-first")
    try {
      await run(Effect.gen(function*() {
        yield* streaming(slot)
        // Transactions keep coming before, across and after the crash: some read after the last snapshot.
        const writing = yield* Effect.forkChild(Effect.forEach(txs, (tx) => Effect.andThen(exec(tx), Effect.sleep("15 millis"))))
        yield* until(() => lines().length > 0, "a committed part")
        // Between two snapshots: changes read and not yet in one.
        yield* Effect.sleep("60 millis")
        child.kill("SIGKILL")
        yield* Effect.sleep("100 millis")
        child = job("cdc-second", "cdc-first")
        let failed = false
        child.on("exit", () => (failed = true))
        yield* Fiber.join(writing)
        // A resumed job that fails (its error on stderr) ends the wait: the count below tells.
        yield* until(() => lines().length >= total(30) || failed, "every change")
        yield* Effect.sleep("300 millis")
      }))
    } finally {
      child.kill("SIGKILL")
    }
    const changes = lines().map((l) => JSON.parse(l) as PostgresCdc.Change)
    fs.rmSync(dir, { recursive: true, force: true })
    expect(changes.length).toBe(total(30))
    expect(apply(changes)).toEqual(await tableRows(table))
  }, 60_000)

  it("commit time is the event time: changes counted in tumbling windows of their transactions' commit", async () => {
    const { table, slot, publication } = await fixture("window")
    const out = Sinks.collect<Stage.WindowResult<undefined, number>>()
    const bursts: Array<{ from: number; to: number; changes: number }> = []
    await run(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(PostgresCdc.source({ slot, publication, url })).pipe(
          Stage.withNativeTimestamps({ allowedLag: 0 }),
          Stage.window(Window.tumbling(500)),
          Stage.aggregate(Aggregate.counting()),
          Stage.writeTo(out)
        ),
        {}
      )
      yield* streaming(slot)
      // Bursts of transactions 700 ms apart; the last one only moves the watermark past the others.
      for (const [from, n] of [[0, 3], [3, 2], [5, 1]] as const) {
        const start = Date.now()
        for (const tx of withTable(transactions(from, n), table)) yield* exec(tx)
        bursts.push({ from: start, to: Date.now(), changes: Array.from({ length: n }, (_, k) => changesPerTx(from + k)).reduce((a, b) => a + b, 0) })
        yield* Effect.sleep("700 millis")
      }
      yield* until(() => out.items.reduce((n, w) => n + w.value, 0) >= bursts[0]!.changes + bursts[1]!.changes, "two bursts' windows")
      yield* job.cancel
    }))
    for (const burst of bursts.slice(0, 2)) {
      const windows = out.items.filter((w) => w.start <= burst.to && w.end > burst.from)
      expect(windows.length).toBeGreaterThan(0)
      expect(windows.every((w) => w.start % 500 === 0 && w.end - w.start === 500)).toBe(true)
      expect(windows.reduce((n, w) => n + w.value, 0)).toBe(burst.changes)
    }
  }, 60_000)
})
