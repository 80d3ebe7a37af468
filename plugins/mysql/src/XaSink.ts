/**
 * Exactly-once inserts over XA on the kit's `Transactional.make`: the records
 * between two barriers are inserted in one XA transaction (`XA START` at the
 * first of them), ended and prepared at the barrier and committed when the
 * snapshot completes. A prepared XA transaction survives its connection
 * (MariaDB 10.5+, MySQL 5.7+), so a restore finds it in `XA RECOVER`.
 *
 * An XID is named when its transaction starts, before the snapshot it belongs
 * to is known: its gtrid is a hash of the job and sink (how `XA RECOVER` is
 * filtered), its bqual the instance, the execution and a counter. At the
 * barrier, before `XA PREPARE`, a row of the state table records which
 * snapshot the XID is; the execution of the job that last opened the sink
 * (the fencing epoch) is kept in a second table.
 */
import { Effect, Exit, Scope } from "effect"
import { type Sink, Transactional } from "@tributary/core"
import { createHash } from "node:crypto"
import * as Client from "./Client.ts"
import * as Connection from "./Connection.ts"
import { insert, retryOf } from "./Rows.ts"
import type { TableOptions } from "./Sink.ts"

export interface XaOptions<A> extends TableOptions<A> {
  /**
   * The table naming prepared transactions (created if missing; default
   * `tributary_xa`), and `<it>_epochs` the fencing epochs; shared by jobs.
   */
  readonly stateTable?: string | undefined
}

/** An open XA transaction, on a connection of its own. */
interface Tx {
  readonly bqual: string
  readonly xa: Connection.Connection
  readonly scope: Scope.Closeable
}

/** The XIDs' format id ("TRIB"): other XA transactions on the server are left alone. */
const FORMAT_ID = 0x54524942
/** `XA COMMIT` / `XA ROLLBACK` of an XID no longer prepared. */
const XAER_NOTA = 1397

/** Tries of an `XA COMMIT` / `XA ROLLBACK` 10 ms apart while its transaction is still attached to a closing session. */
const DETACH_ATTEMPTS = 300

/** The gtrid of a job's sink: 40 hex characters (MySQL allows 64 bytes each for gtrid and bqual). */
const gtridOf = (job: string, sink: string) => createHash("sha1").update(`${job}\u0000${sink}`).digest("hex")

/**
 * A sink inserting into `options.table` exactly once: each record is visible
 * once, after the snapshot that covers it completes. Each instance holds one
 * connection for its open XA transaction (XA allows one per connection),
 * kept until the transaction is committed on it, and one for recovery and
 * the epoch.
 */
export const exactlyOnce = <A>(options: XaOptions<A>): Effect.Effect<Sink.Sink<A, Client.MysqlClient>, never, Client.MysqlClient> =>
  Effect.map(Effect.service(Client.MysqlClient), ({ server }) => {
    const name = options.name ?? `mysql xa ${options.table}`
    const rows = insert(options)
    const state = Connection.id(options.stateTable ?? "tributary_xa")
    const epochs = Connection.id(`${options.stateTable ?? "tributary_xa"}_epochs`)
    return Transactional.make<A, Tx, Client.MysqlClient | Scope.Scope>({
      name,
      maxParallelism: options.maxParallelism,
      retry: retryOf(server, options.retry),
      open: ({ job = "", instance, execution = 0 }) =>
        Effect.gen(function*() {
          const control = yield* Connection.reconnecting(name)
          const context = yield* Effect.context<Client.MysqlClient>()
          yield* control("creating the XA state tables", `CREATE TABLE IF NOT EXISTS ${state} (
            job VARCHAR(255) NOT NULL, sink VARCHAR(255) NOT NULL, instance INT NOT NULL, snapshot BIGINT NOT NULL,
            bqual VARCHAR(64) NOT NULL, PRIMARY KEY (job, sink, instance, snapshot))`)
          yield* control("creating the XA state tables", `CREATE TABLE IF NOT EXISTS ${epochs} (
            job VARCHAR(255) NOT NULL, sink VARCHAR(255) NOT NULL, execution BIGINT NOT NULL, PRIMARY KEY (job, sink))`)
          const scope = yield* Effect.scope
          const gtrid = gtridOf(job, name)
          const xid = (bqual: string) => [gtrid, bqual]
          const XID = `?, ?, ${FORMAT_ID}`
          let started = 0
          // Prepared here and not yet ended, by bqual: ended on the connection that prepared them,
          // so no other session asks for them while MariaDB detaches them from a closing one.
          const held = new Map<string, Tx>()
          /** The bqual prepared as `id`, if still recorded. */
          const bqualOf = (id: Transactional.TransactionId) =>
            Effect.map(
              control<Array<{ bqual: string }>>("reading the XA state", `SELECT bqual FROM ${state} WHERE job = ? AND sink = ? AND instance = ? AND snapshot = ?`, [
                job,
                name,
                id.instance,
                id.snapshot
              ]),
              (found) => found[0]?.bqual
            )
          /** The bquals of this job's sink that `XA RECOVER` lists: prepared, attached to a session or not. */
          const preparedBquals = Effect.map(
            control<Array<{ formatID: number; gtrid_length: number; data: string | Buffer }>>("XA RECOVER", "XA RECOVER"),
            (rows) =>
              new Set(
                rows.filter((p) => Number(p.formatID) === FORMAT_ID && String(p.data).slice(0, p.gtrid_length) === gtrid).map((p) =>
                  String(p.data).slice(p.gtrid_length)
                )
              )
          )
          /**
           * Ends a transaction prepared by another session, gone or closing (a restore's recovery, or a
           * commit whose own connection was lost). Unknown to the server (XAER_NOTA), it was ended
           * before, unless `XA RECOVER` still lists it: then its session is closing (MariaDB detaches it
           * a moment later), and the call is tried again.
           */
          const endDetached = (operation: string, statement: string, bqual: string) =>
            Effect.gen(function*() {
              for (let attempt = 0;; attempt++) {
                const nota = yield* Effect.catchIf(
                  Effect.as(control(operation, statement, xid(bqual)), false),
                  (e) => Connection.errno(e) === XAER_NOTA,
                  () => Effect.succeed(true)
                )
                if (!nota || !(yield* preparedBquals).has(bqual)) return
                if (attempt === DETACH_ATTEMPTS) {
                  return yield* new Client.MysqlError({ server, operation, cause: new Error("the transaction stays attached to another session") })
                }
                yield* Effect.sleep(10)
              }
            })
          /** Ends prepared transaction `id` with `XA COMMIT` or `XA ROLLBACK`, on its own connection while this instance holds it. */
          const end = (verb: "COMMIT" | "ROLLBACK") => (id: Transactional.TransactionId) =>
            Effect.gen(function*() {
              const bqual = yield* bqualOf(id)
              if (bqual === undefined) return
              const operation = `XA ${verb} of ${Transactional.format(id)}`
              const statement = `XA ${verb} ${XID}`
              const own = held.get(bqual)
              held.delete(bqual)
              // Lost with its connection, it is ended from another one when the kit retries the call.
              if (own) yield* Effect.ensuring(own.xa.query(operation, statement, xid(bqual)), Scope.close(own.scope, Exit.void))
              else yield* endDetached(operation, statement, bqual)
              // Older rows are of transactions ended already (or never prepared).
              yield* control("updating the XA state", `DELETE FROM ${state} WHERE job = ? AND sink = ? AND instance = ? AND snapshot <= ?`, [job, name, id.instance, id.snapshot])
            })

          const connection: Transactional.Connection<A, Tx> = {
            // A connection per transaction: MariaDB starts no other on a connection until its prepared one
            // is ended or detached from it.
            begin: Effect.gen(function*() {
              const bqual = `${instance}.${execution}.${started++}`
              const own = yield* Scope.fork(scope)
              // The context first: it holds the sink's scope, which would take the connection otherwise.
              const xa = yield* Effect.provideContext(Scope.provide(Connection.connect(name), own), context)
              yield* xa.query(`XA START of ${name}`, `XA START ${XID}`, xid(bqual))
              return { bqual, xa, scope: own }
            }),
            write: (tx, batch) => rows.run((operation, sql, values) => tx.xa.query(operation, sql, values), batch),
            prepare: (tx, id) =>
              Effect.gen(function*() {
                yield* control("recording the XA state", `REPLACE INTO ${state} (job, sink, instance, snapshot, bqual) VALUES (?, ?, ?, ?, ?)`, [
                  job,
                  name,
                  id.instance,
                  id.snapshot,
                  tx.bqual
                ])
                yield* tx.xa.query(`XA END of ${Transactional.format(id)}`, `XA END ${XID}`, xid(tx.bqual))
                yield* tx.xa.query(`XA PREPARE of ${Transactional.format(id)}`, `XA PREPARE ${XID}`, xid(tx.bqual))
                held.set(tx.bqual, tx)
              }),
            commit: end("COMMIT"),
            abort: end("ROLLBACK"),
            recover: Effect.gen(function*() {
              const prepared = yield* preparedBquals
              const recorded = yield* control<Array<{ instance: number; snapshot: number; bqual: string }>>(
                "reading the XA state",
                `SELECT instance, snapshot, bqual FROM ${state} WHERE job = ? AND sink = ?`,
                [job, name]
              )
              return recorded.filter((r) => prepared.has(r.bqual)).map((r): Transactional.TransactionId => ({
                job,
                sink: name,
                instance: r.instance,
                snapshot: Number(r.snapshot)
              }))
            }),
            epoch: {
              get: Effect.map(
                control<Array<{ execution: number }>>("reading the fencing epoch", `SELECT execution FROM ${epochs} WHERE job = ? AND sink = ?`, [job, name]),
                (found) => (found[0] === undefined ? undefined : Number(found[0].execution))
              ),
              set: (n) =>
                Effect.asVoid(control("setting the fencing epoch", `INSERT INTO ${epochs} (job, sink, execution) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE execution = VALUES(execution)`, [
                  job,
                  name,
                  n
                ]))
            }
          }
          return connection
        })
    })
  })
