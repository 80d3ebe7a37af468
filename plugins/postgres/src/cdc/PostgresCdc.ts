/**
 * Change data capture from PostgreSQL: the row changes of a publication's
 * tables, read from a permanent logical replication slot with `pgoutput`.
 * One transaction is one batch, emitted once committed, in commit order; the
 * source's position is the commit LSN of the last transaction emitted, and the
 * slot is told to release WAL only up to a position saved in a complete
 * snapshot, so a restore replays from the slot exactly what followed it.
 *
 * @module
 */
import { Data, Effect, Schema, Scope } from "effect"
import { Arrival, FINAL_SNAPSHOT, Source, Unrecoverable } from "@tributary/core"
import type { Duplex } from "node:stream"
import postgres from "postgres"
import * as Lsn from "./Lsn.ts"
import { type Change, decoder, type Row, type Transaction } from "./Pgoutput.ts"
import * as Replication from "./Replication.ts"

export type { Change, Row } from "./Pgoutput.ts"

/** A change data capture source that cannot start or go on, naming its slot and what is wrong. */
export class PostgresCdcError extends Data.TaggedError("PostgresCdcError")<{
  readonly slot: string
  readonly reason: string
  readonly cause?: unknown
  /** What the database holds (a missing publication, a dropped slot) or sent (a TRUNCATE): a restart would meet it again. */
  readonly permanent?: boolean | undefined
}> {
  get [Unrecoverable]() {
    return this.permanent === true
  }

  override get message() {
    const cause = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `postgres cdc (slot "${this.slot}"): ${this.reason}${cause}`
  }
}

/** Options of {@link source}. */
export interface PostgresCdcOptions {
  /** The replication slot (created, permanent, when missing; `[a-z0-9_]`). It holds WAL until the job confirms it. */
  readonly slot: string
  /** The publication naming the tables (`CREATE PUBLICATION ... FOR TABLE ...`). */
  readonly publication: string
  /** The tables to emit (`schema.table`, or `table` in `public`); default: all of the publication's. */
  readonly tables?: ReadonlyArray<string> | undefined
  /**
   * Read the tables first (as inserts) in the snapshot the slot is created
   * with, then stream what followed it: no change lost or repeated at the
   * seam. Without a restored position the slot is created anew for it.
   */
  readonly snapshot?: boolean | undefined
  /**
   * End once the changes committed before the source first opened are read (a catch-up or a
   * backfill); a restored source ends at the same point. Default: unbounded.
   */
  readonly bounded?: boolean | undefined
  /** Connection URL (default `postgres://postgres@127.0.0.1:5432/test`, or `PGURL` / `DATABASE_URL` when set). */
  readonly url?: string | undefined
  /**
   * How often to tell the server where the job is and ask how far it read (ms, default 10 000;
   * `wal_sender_timeout` is 60 s). The answer moves the position of a slot whose tables see no
   * change, so it releases the WAL the rest of the database writes once a snapshot covers it.
   */
  readonly statusInterval?: number | undefined
}

/** What a snapshot saves: the last transaction emitted (commit LSN and end of its commit record), or the table snapshot under way. */
interface Position {
  readonly lsn: string
  readonly end: string
  readonly snapshotting?: true | undefined
  /** Of a bounded source: the WAL position it ends at. */
  readonly until?: string | undefined
}

const defaultUrl = () => process.env.PGURL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/
/** How long a pull with nothing to read waits for a transaction before answering `[]`. */
const IDLE_WAIT_MS = 10

/**
 * The row changes of `publication`'s tables, as {@link Change}s with text
 * values; decode them with `Stage.decode(PostgresCdc.change(Row))` (a row
 * that does not decode goes to its dead letters). One instance; exactly once
 * with a transactional sink and `exactly-once` snapshots.
 */
export const source = (options: PostgresCdcOptions): Source.Source<Change> =>
  Source.make({
    name: `postgres cdc ${options.slot}`,
    bounded: options.bounded === true,
    maxParallelism: 1,
    eventTime: (c: Change) => c.commitTime,
    open: ({ batchSize, restoredPosition }) => open(options, batchSize, restoredPosition as Position | undefined)
  })

/**
 * The schema of a change whose rows decode with `row` (from the text values
 * PostgreSQL prints, e.g. `Schema.NumberFromString` for an integer column).
 */
export const change = <S extends Schema.Top>(row: S) =>
  Schema.Struct({
    op: Schema.Literals(["insert", "update", "delete"]),
    table: Schema.String,
    before: Schema.optional(row),
    after: Schema.optional(row),
    lsn: Schema.String,
    commitTime: Schema.Number
  })

const open = (options: PostgresCdcOptions, batchSize: number, restored: Position | undefined) =>
  Effect.gen(function*() {
    const { slot, publication } = options
    const url = options.url ?? defaultUrl()
    const fail = (reason: string, cause?: unknown) => new PostgresCdcError({ slot, reason, cause })
    const refuse = (reason: string, cause?: unknown) => new PostgresCdcError({ slot, reason, cause, permanent: true })
    const query = <A>(reason: string, run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: (cause) => fail(`${reason} (${url})`, cause) })
    if (!IDENTIFIER.test(slot)) return yield* refuse(`invalid slot name (use [a-z0-9_])`)
    if (!IDENTIFIER.test(publication)) return yield* refuse(`invalid publication name "${publication}"`)
    if (restored?.snapshotting) {
      return yield* refuse("the snapshot restored was taken while the tables were being read; start the job again without it")
    }
    const sql = yield* Effect.acquireRelease(
      Effect.sync(() => postgres(url, { max: 1, onnotice: () => {} })),
      (sql) => Effect.promise(() => sql.end({ timeout: 5 }))
    )
    const published = yield* query("cannot read the publication", () =>
      sql<Array<{ table: string }>>`select t.schemaname || '.' || t.tablename as table from pg_publication p
        left join pg_publication_tables t on t.pubname = p.pubname where p.pubname = ${publication}`)
    if (published.length === 0) return yield* refuse(`publication "${publication}" does not exist (${url})`)
    const tables = options.tables?.map((t) => (t.includes(".") ? t : `public.${t}`)) ?? published.flatMap((r) => (r.table ? [r.table] : []))
    const missing = tables.filter((t) => !published.some((r) => r.table === t))
    if (missing.length > 0) return yield* refuse(`publication "${publication}" has no table ${missing.join(", ")}`)
    const accept = new Set(tables)

    const [existing] = yield* query("cannot read the replication slots", () =>
      sql<Array<{ plugin: string; confirmed: string }>>`select plugin, confirmed_flush_lsn::text as confirmed
        from pg_replication_slots where slot_name = ${slot} and database = current_database()`)
    if (restored && !existing) return yield* refuse(`the replication slot was dropped: the changes after ${restored.lsn} are lost`)
    if (existing && existing.plugin !== "pgoutput") return yield* refuse(`the slot decodes with ${existing.plugin}, not pgoutput`)
    if (restored && Lsn.parse(restored.end) < Lsn.parse(existing!.confirmed)) {
      return yield* refuse(`the slot confirmed ${existing!.confirmed}, past the restored position ${restored.end}: the changes between are lost`)
    }

    const repl = yield* Effect.acquireRelease(
      Effect.sync(() =>
        postgres(url, {
          max: 1,
          fetch_types: false,
          // The connection idles while the tables are read in its exported snapshot: keep it.
          idle_timeout: 0,
          max_lifetime: 0,
          onnotice: () => {},
          connection: { replication: "database" } as Record<string, string>
        })
      ),
      (repl) => Effect.promise(() => repl.end({ timeout: 1 }))
    )
    // A snapshot of the tables needs a slot created with it (a fresh start: nothing to resume).
    const snapshot = options.snapshot === true && !restored
    if (existing && snapshot) yield* query("cannot drop the slot to create it again", () => sql`select pg_drop_replication_slot(${slot})`)
    let start = restored ? Lsn.parse(restored.end) : existing && !snapshot ? Lsn.parse(existing.confirmed) : 0n
    let snapshotName: string | undefined
    if (!existing || snapshot) {
      const [created] = yield* query("cannot create the slot", () =>
        repl.unsafe<Array<{ consistent_point: string; snapshot_name: string | null }>>(
          `CREATE_REPLICATION_SLOT ${slot} LOGICAL pgoutput ${snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT"}`
        ))
      start = Lsn.parse(created!.consistent_point)
      snapshotName = created!.snapshot_name ?? undefined
    }

    // A bounded source ends past a message it writes to the WAL now: the server's position passes
    // it once every change committed before is sent (the WAL's insert position may never be reached).
    // Transactional, so that its commit flushes it: the server sends only flushed WAL.
    const until = !options.bounded
      ? undefined
      : restored?.until !== undefined
      ? Lsn.parse(restored.until)
      : Lsn.parse((yield* query("cannot mark the end of a bounded read", () =>
        sql<Array<{ lsn: string }>>`select pg_logical_emit_message(true, 'tributary', ${slot})::text as lsn`))[0]!.lsn)
    // What was emitted: the last transaction's commit LSN and end; what is durable (in a complete snapshot).
    let commit = restored ? Lsn.parse(restored.lsn) : 0n
    let end = start
    let durable = start
    const saved = new Map<number, bigint>()
    const ready: Array<Transaction> = []
    let queued = 0
    let failure: PostgresCdcError | undefined
    let stream: Duplex | undefined
    let closing = false
    // Between a transaction's Begin and Commit: its commit, past the server's position, is still to come.
    let inTransaction = false
    const skipUpTo = commit
    const feed = decoder((table) => accept.has(table))
    // A pull waiting for data: woken by the next transaction, so it is emitted as it arrives.
    const arrival = Arrival.make(IDLE_WAIT_MS)

    const onData = (data: Buffer) => {
      try {
        const message = Replication.parse(data)
        if (message?._tag === "Keepalive") {
          // Everything up to the server's position has come: with no transaction of the tables
          // waiting, the position moves there, so that a slot whose tables see no change still
          // releases the WAL of the rest of the database once a snapshot covers it.
          if (!inTransaction && ready.length === 0 && message.walEnd > end) end = message.walEnd
          if (message.replyRequested) Replication.sendStatus(stream!, durable)
        } else if (message) {
          if (message.body[0] === 0x42) inTransaction = true
          else if (message.body[0] === 0x43) inTransaction = false
          const tx = feed(message.body)
          // Replication restarts after the restored position; should the server send again what
          // the restored snapshot covers, it is skipped all the same.
          // A bounded source emits only what committed before its end, the same on every replay.
          if (tx && tx.commit > skipUpTo && (until === undefined || tx.commit < until)) {
            ready.push(tx)
            queued += tx.changes.length
            if (queued > 16 * batchSize) stream!.pause()
            arrival.wake()
          }
        }
      } catch (cause) {
        failure ??= refuse("cannot decode the replication stream", cause)
        stream!.pause()
      }
    }
    const startStreaming = Effect.gen(function*() {
      const s = yield* query("cannot start replication", () =>
        repl.unsafe(`START_REPLICATION SLOT ${slot} LOGICAL ${Lsn.format(start)} (proto_version '1', publication_names '${publication}')`)
          .writable() as unknown as Promise<Duplex>)
      stream = s
      s.on("data", onData)
      s.on("error", (cause) => void (failure ??= fail("the replication stream failed", cause)))
      s.on("close", () => void (closing || (failure ??= fail("the server closed the replication stream"))))
      const interval = options.statusInterval ?? 10_000
      // The heartbeat: the server's answer says how far it read, which moves an idle slot along.
      const timer = setInterval(() => stream && !closing && Replication.sendStatus(stream, durable, true), interval)
      yield* Effect.addFinalizer(() =>
        Effect.promise(() =>
          new Promise<void>((resolve) => {
            closing = true
            clearInterval(timer)
            if (s.destroyed) return resolve()
            const timeout = setTimeout(resolve, 2000)
            s.once("close", () => (clearTimeout(timeout), resolve()))
            s.end()
          })
        )
      )
    })

    const tableSnapshot = snapshotName ? yield* readTables(sql, snapshotName, tables, batchSize, Lsn.format(start), query) : undefined
    if (!tableSnapshot) yield* startStreaming
    const scope = yield* Effect.scope
    let reading = tableSnapshot !== undefined
    const here = (): Position => ({
      lsn: Lsn.format(commit),
      end: Lsn.format(end),
      ...(reading ? { snapshotting: true } : {}),
      ...(until !== undefined ? { until: Lsn.format(until) } : {})
    })
    let asked = 0
    // Where the last batch came from: reading again from there reads it again.
    let origin: Source.Origin = { position: here() }
    const streamChanges: Effect.Effect<ReadonlyArray<Change> | undefined, PostgresCdcError> = Effect.gen(function*() {
      if (failure) return yield* failure
      if (ready.length === 0) {
        if (until !== undefined && !inTransaction && end > until) return undefined
        // A bounded read asks where the server is, so that it learns soon that it is done.
        if (until !== undefined && stream && Date.now() - asked > 50) {
          asked = Date.now()
          Replication.sendStatus(stream, durable, true)
        }
        yield* arrival.wait
        // Set meanwhile by the stream's handlers.
        const failed = failure as PostgresCdcError | undefined
        if (failed) return yield* failed
        if (ready.length === 0) return []
      }
      origin = { position: here() }
      // Whole transactions only: a position never falls inside one.
      const batch: Array<Change> = []
      let taken = 0
      while (taken < ready.length && (taken === 0 || batch.length + ready[taken]!.changes.length <= batchSize)) {
        const tx = ready[taken++]!
        for (const c of tx.changes) batch.push(c)
        commit = tx.commit
        end = tx.end
      }
      ready.splice(0, taken)
      queued -= batch.length
      if (stream!.isPaused() && queued <= 4 * batchSize) stream!.resume()
      return batch
    })

    return {
      pull: Effect.suspend(() => {
        if (!reading) return streamChanges
        origin = { position: here() }
        return Effect.flatMap(tableSnapshot!.next, (rows) => {
          if (rows !== undefined) return Effect.succeed(rows)
          reading = false
          return Effect.as(Scope.provide(startStreaming, scope), [])
        })
      }),
      position: (snapshot?: number): Position => {
        if (snapshot !== undefined) saved.set(snapshot, end)
        return here()
      },
      origin: () => origin,
      commit: (snapshot: number) =>
        Effect.sync(() => {
          // The job is done with everything read (it succeeded), or with what snapshot `snapshot` saved.
          const upTo = snapshot === FINAL_SNAPSHOT ? end : saved.get(snapshot)
          for (const id of saved.keys()) if (id <= snapshot) saved.delete(id)
          if (upTo === undefined || upTo <= durable) return
          durable = upTo
          if (stream && !closing && !stream.destroyed) Replication.sendStatus(stream, durable)
        })
    } satisfies Source.SourceReader<Change>
  })

/**
 * Reads `tables` in the exported snapshot `name`, a batch at a time, as
 * inserts at the slot's consistent point; `next` answers `undefined` once all are read.
 */
const readTables = (
  sql: postgres.Sql,
  name: string,
  tables: ReadonlyArray<string>,
  batchSize: number,
  lsn: string,
  query: <A>(reason: string, run: () => Promise<A>) => Effect.Effect<A, PostgresCdcError>
) =>
  Effect.gen(function*() {
    const conn = yield* Effect.acquireRelease(query("cannot reserve a connection", () => sql.reserve()), (conn) => Effect.sync(() => conn.release()))
    yield* query("cannot open the exported snapshot", async () => {
      await conn.unsafe("begin isolation level repeatable read read only")
      await conn.unsafe(`set transaction snapshot '${name}'`)
    })
    const commitTime = Date.now()
    let index = 0
    let rows: AsyncIterator<ReadonlyArray<Row>> | undefined
    const next: Effect.Effect<ReadonlyArray<Change> | undefined, PostgresCdcError> = Effect.gen(function*() {
      while (index < tables.length) {
        const table = tables[index]!
        if (!rows) {
          const [schema, relation] = table.split(".")
          const columns = yield* query(`cannot list the columns of ${table}`, () =>
            conn<Array<{ name: string }>>`select attname as name from pg_attribute
              where attrelid = ${`"${schema}"."${relation}"`}::regclass and attnum > 0 and not attisdropped order by attnum`)
          // Every value as text, as the replication stream carries it.
          const list = columns.map((c) => `${quote(c.name)}::text as ${quote(c.name)}`).join(", ")
          rows = conn.unsafe(`select ${list} from ${quote(schema!)}.${quote(relation!)}`).cursor(batchSize)[Symbol.asyncIterator]() as AsyncIterator<ReadonlyArray<Row>>
        }
        // A cursor whose query has ended answers `{ done: true }` itself, not a promise of it.
        const step = yield* query(`cannot read ${table}`, () => Promise.resolve(rows!.next()))
        if (!step.done) return step.value.map((after): Change => ({ op: "insert", table, before: undefined, after, lsn, commitTime }))
        rows = undefined
        index++
      }
      yield* query("cannot end the snapshot transaction", () => conn.unsafe("commit"))
      return undefined
    })
    return { next }
  })

const quote = (identifier: string) => `"${identifier.replaceAll(`"`, `""`)}"`
