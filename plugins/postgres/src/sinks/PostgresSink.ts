/**
 * Sinks into a PostgreSQL table: plain batched inserts (at-least-once),
 * upserts by key (exactly-once for an exactly-once, deterministic pipeline, by
 * `Transactional.idempotent`) and exactly-once inserts over prepared
 * transactions (two-phase commit, by `Transactional.make`).
 */
import { Duration, Effect, type Scope } from "effect"
import { type Retry, Sink, Transactional } from "@tributary/core"
import { createHash } from "node:crypto"
import type postgres from "postgres"
import { PostgresClient } from "../Client.ts"
import { codeOf, ident, isConnectionLost, reasonOf } from "../sql.ts"
import * as Rows from "./rows.ts"

export interface InsertOptions {
  /** The table written to (`schema.table` allowed). */
  readonly table: string
  /** The columns written (default: the keys of each batch's first row). */
  readonly columns?: ReadonlyArray<string> | undefined
  /** The sink's name (default `postgres <table>`). */
  readonly name?: string | undefined
  /**
   * How the calls that may be repeated are retried when the connection is lost (default: 8
   * times, from 100 ms doubling up to 2 s, about 10 s in all, so a server restart is ridden out).
   */
  readonly retry?: Partial<Retry.RetryOptions> | undefined
  /**
   * How long a call may go unanswered before it counts as a lost connection (default 60 s): the
   * client can leave a statement waiting forever on a connection a server restart broke.
   */
  readonly callTimeout?: Duration.Input | undefined
}

/** The kit's retry of a sink's repeatable calls, on lost connections only. */
const retryOf = (options: InsertOptions): Retry.RetryOptions => ({
  server: "PostgreSQL",
  times: 8,
  delay: "100 millis",
  maxDelay: "2 seconds",
  retryable: isConnectionLost,
  ...options.retry
})

export interface UpsertOptions extends InsertOptions {
  /** The key column(s): a unique index or primary key of the table. */
  readonly key: string | ReadonlyArray<string>
}

/** The clause making an insert of `columns` an upsert by `keys`. */
const onConflict = (keys: ReadonlyArray<string>, columns: ReadonlyArray<string>) => {
  const others = columns.filter((c) => !keys.includes(c))
  const set = others.map((c) => `${ident(c)} = excluded.${ident(c)}`).join(", ")
  return ` on conflict (${keys.map(ident).join(", ")}) do ${others.length === 0 ? "nothing" : `update set ${set}`}`
}

/** Calls the server, naming the sink, the table and what failed. */
const caller = (client: PostgresClient["Service"], sink: string, options: InsertOptions) => {
  const timeout = options.callTimeout ?? "60 seconds"
  return <A>(what: string, run: () => Promise<A>) => {
    const fail = (cause: unknown) => client.fail(reasonOf(`sink ${sink}: ${what} ${options.table}`, cause))(cause)
    return Effect.tryPromise({ try: run, catch: fail }).pipe(
      // As the client says of a socket that timed out: a lost connection, retried where a call may be repeated.
      Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail(fail(Object.assign(new Error(`no answer within ${Duration.format(Duration.fromInputUnsafe(timeout))}`), { code: "ETIMEDOUT" }))) })
    )
  }
}

/** Each batch inserted at once (at-least-once: a restore writes again the records since the last snapshot). */
export const insert = (options: InsertOptions): Sink.Sink<postgres.Row, PostgresClient> => {
  const name = options.name ?? `postgres ${options.table}`
  return Sink.make({
    name,
    open: () =>
      Effect.gen(function*() {
        const client = yield* PostgresClient
        const sql = yield* client.connect
        const call = caller(client, name, options)
        return {
          write: (batch) =>
            batch.length === 0 ? Effect.void : call("cannot insert into", () => Rows.insert(sql, options.table, Rows.columnsOf(options.columns, batch), batch))
        }
      })
  })
}

/**
 * Each batch upserted by `key` (`INSERT … ON CONFLICT (key) DO UPDATE`), the
 * last record of each key of the batch. Exactly-once when the records of a key
 * come from an exactly-once, deterministic pipeline (see `Transactional.idempotent`);
 * else at-least-once, a key ending at its last value written.
 */
export const upsert = (options: UpsertOptions): Sink.Sink<postgres.Row, PostgresClient> => {
  const name = options.name ?? `postgres ${options.table}`
  const keys = typeof options.key === "string" ? [options.key] : options.key
  const keyOf = keys.length === 1 ? (row: postgres.Row) => row[keys[0]!] : (row: postgres.Row) => JSON.stringify(keys.map((k) => row[k]))
  return Transactional.idempotent({
    name,
    key: keyOf,
    retry: retryOf(options),
    open: () =>
      Effect.gen(function*() {
        const client = yield* PostgresClient
        const sql = yield* client.connect
        const call = caller(client, name, options)
        return {
          upsert: (rows) => {
            const columns = Rows.columnsOf(options.columns, rows)
            return call("cannot upsert into", () => Rows.insert(sql, options.table, columns, rows, onConflict(keys, columns)))
          }
        }
      })
  })
}

/** A change of one row, as CDC emits it: `after` for an insert or update, `before` (its key at least) for a delete. */
export interface Change {
  readonly op: "insert" | "update" | "delete"
  readonly before?: postgres.Row | undefined
  readonly after?: postgres.Row | undefined
}

/**
 * Applies a changelog to a table by `key`: of each batch, the last change of
 * each key wins, a delete deleting the row and an insert or update upserting
 * `after`. Its guarantee is the upsert's (exactly-once for the changes of a key
 * from an exactly-once, deterministic pipeline, else at-least-once); a key's
 * changes must reach one instance, in order (partition by the key).
 */
export const changelog = (options: UpsertOptions): Sink.Sink<Change, PostgresClient> => {
  const name = options.name ?? `postgres ${options.table}`
  const keys = typeof options.key === "string" ? [options.key] : options.key
  const rowOf = (change: Change) => (change.op === "delete" ? change.before : change.after) ?? {}
  const keyOf = keys.length === 1 ? (c: Change) => rowOf(c)[keys[0]!] : (c: Change) => JSON.stringify(keys.map((k) => rowOf(c)[k]))
  return Transactional.idempotent({
    name,
    key: keyOf,
    retry: retryOf(options),
    open: () =>
      Effect.gen(function*() {
        const client = yield* PostgresClient
        const sql = yield* client.connect
        const call = caller(client, name, options)
        return {
          upsert: (changes) => {
            const deleted = changes.filter((c) => c.op === "delete").map(rowOf)
            const upserted = changes.filter((c) => c.op !== "delete").map(rowOf)
            const columns = Rows.columnsOf(options.columns, upserted)
            return call("cannot apply changes to", async () => {
              if (deleted.length > 0) await Rows.remove(sql, options.table, keys, deleted)
              if (upserted.length > 0) await Rows.insert(sql, options.table, columns, upserted, onConflict(keys, columns))
            })
          }
        }
      })
  })
}

/** Where the epochs of the exactly-once sinks are kept (the newest execution per job and sink, for fencing). */
export const EPOCHS_TABLE = "tributary_sink_epochs"

/**
 * Inserts exactly-once over prepared transactions: the records since a
 * snapshot barrier are inserted in a transaction on a connection of their
 * own, `PREPARE TRANSACTION` at the barrier, `COMMIT PREPARED` once the
 * snapshot completes; after a restart, the prepared transactions of this job
 * and sink are committed or rolled back as the restored snapshot says, and an
 * older execution still running is fenced off. Readers see a snapshot's rows
 * once it completes. The server needs `max_prepared_transactions` of at least
 * the sink's instances times the snapshots in flight; a prepared transaction
 * holds its locks until committed.
 */
export const exactlyOnce = (options: InsertOptions): Sink.Sink<postgres.Row, PostgresClient> => {
  const name = options.name ?? `postgres ${options.table}`
  return Transactional.make<postgres.Row, postgres.ReservedSql, PostgresClient | Scope.Scope>({
    name,
    retry: retryOf(options),
    open: ({ job = "" }) =>
      Effect.gen(function*() {
        const client = yield* PostgresClient
        const sql = yield* client.connect
        const call = caller(client, name, options)
        // Gids take only [a-z0-9_]: the job and sink are hashed into a prefix owned by this sink.
        const prefix = `trib_${createHash("sha256").update(`${job}\u0000${name}`).digest("hex").slice(0, 32)}_`
        const gid = (id: Transactional.TransactionId) => `${prefix}${id.instance}_${id.snapshot}`
        // Of a transaction already committed or rolled back (a repeated call): nothing to do.
        const unlessGone = (e: unknown) => (codeOf(e) === "42704" ? undefined : Promise.reject(e))
        yield* call("cannot create", () =>
          sql.unsafe(`create table if not exists ${EPOCHS_TABLE} (job text not null, sink text not null, execution bigint not null, primary key (job, sink))`)
            // Instances creating it at once: one wins.
            .catch((e) => (codeOf(e) === "23505" || codeOf(e) === "42P07" ? undefined : Promise.reject(e))))
        const connection: Transactional.Connection<postgres.Row, postgres.ReservedSql> = {
          begin: call("cannot begin a transaction on", async () => {
            const conn = await sql.reserve()
            await conn.unsafe("begin")
            return conn
          }),
          write: (conn, batch) => call("cannot insert into", () => Rows.insert(conn, options.table, Rows.columnsOf(options.columns, batch), batch)),
          prepare: (conn, id) =>
            call("cannot prepare the transaction of", async () => {
              await conn.unsafe(`prepare transaction '${gid(id)}'`)
              conn.release()
            }),
          commit: (id) => call("cannot commit into", () => sql.unsafe(`commit prepared '${gid(id)}'`).then(() => undefined, unlessGone)),
          abort: (id) => call("cannot roll back from", () => sql.unsafe(`rollback prepared '${gid(id)}'`).then(() => undefined, unlessGone)),
          recover: Effect.map(
            call("cannot list the prepared transactions of", () =>
              sql<Array<{ gid: string }>>`select gid from pg_prepared_xacts where database = current_database() and starts_with(gid, ${prefix})`),
            (rows) =>
              rows.map((r) => {
                const [instance, snapshot] = r.gid.slice(prefix.length).split("_")
                return { job, sink: name, instance: Number(instance), snapshot: Number(snapshot) }
              })
          ),
          epoch: {
            get: Effect.map(
              call("cannot read the epoch of", () => sql<Array<{ execution: string }>>`select execution::text from ${sql(EPOCHS_TABLE)} where job = ${job} and sink = ${name}`),
              (rows) => (rows[0] ? Number(rows[0].execution) : undefined)
            ),
            set: (execution) =>
              Effect.asVoid(call("cannot write the epoch of", () =>
                sql`insert into ${sql(EPOCHS_TABLE)} (job, sink, execution) values (${job}, ${name}, ${execution})
                    on conflict (job, sink) do update set execution = excluded.execution`))
          }
        }
        return connection
      })
  })
}
