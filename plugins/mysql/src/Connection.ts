/**
 * Connections of the client's pool as the plugin uses them: each statement
 * failing with a `MysqlError` that names the server and the operation, each
 * connection closed (not returned to the pool) when its scope ends.
 */
import { Effect, type Scope } from "effect"
import { Arrival, ConnectorError } from "@tributary/core"
import type { Connection as CallbackConnection } from "mysql2"
import * as mysql from "mysql2/promise"
import { isConnectionError, MysqlClient, MysqlError } from "./Client.ts"

/** The error number of a failed statement (`1397`: XAER_NOTA, no such XA transaction). */
export const errno = (cause: unknown): number | undefined =>
  cause instanceof MysqlError ? errno(cause.cause) : (cause as { errno?: number } | null)?.errno

/** One connection of the pool. Refused credentials fail at once with a `ConnectorError` naming server and user. */
const acquire = (connector: string): Effect.Effect<Connection, ConnectorError | MysqlError, MysqlClient> =>
  Effect.flatMap(Effect.service(MysqlClient), ({ pool, server }) =>
    Effect.tryPromise({
      try: () => pool.getConnection().then((raw) => new Connection(raw, server)),
      catch: (cause) => {
        const code = (cause as { code?: string }).code ?? ""
        return code.startsWith("ER_ACCESS_DENIED") || code === "ER_DBACCESS_DENIED_ERROR"
          ? new ConnectorError({ connector, server, attempts: 1, cause })
          : new MysqlError({ server, operation: "cannot connect", cause })
      }
    }))

// Destroyed, not released: an idle pooled session would outlive the job.
const close = (connection: Connection) => Effect.sync(() => connection.raw.destroy())

/** A connection of its own, closed with the scope. */
export const connect = (connector: string): Effect.Effect<Connection, ConnectorError | MysqlError, MysqlClient | Scope.Scope> =>
  Effect.acquireRelease(acquire(connector), close)

/**
 * A connection opened on first use, and again after it was lost, closed with
 * the scope: for the calls the kit retries when the server goes away. A call
 * after the scope closed (a commit of a snapshot completing after its
 * instance ended) runs on a connection of its own.
 */
export const reconnecting = (connector: string): Effect.Effect<
  <A = Array<Record<string, unknown>>>(operation: string, sql: string, values?: ReadonlyArray<unknown>) => Effect.Effect<A, ConnectorError | MysqlError>,
  never,
  MysqlClient | Scope.Scope
> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<MysqlClient>()
    let current: Connection | undefined
    let closed = false
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return current ? close(current) : Effect.void
      })
    )
    return (operation, sql, values) =>
      Effect.gen(function*() {
        if (closed) return yield* Effect.provideContext(Effect.scoped(Effect.flatMap(connect(connector), (c) => c.query(operation, sql, values))), context)
        // Uninterruptible up to the assignment, so the finalizer sees every connection opened.
        const connection = current ??
          (yield* Effect.uninterruptible(Effect.tap(Effect.provideContext(acquire(connector), context), (c) => Effect.sync(() => (current = c)))))
        return yield* Effect.tapError(connection.query(operation, sql, values), (e) => {
          if (!isConnectionError(e)) return Effect.void
          current = undefined
          return close(connection)
        })
      }) as Effect.Effect<any, ConnectorError | MysqlError>
  })

/** A connection whose statements fail with a `MysqlError` naming the server and the operation. */
export class Connection {
  readonly raw: mysql.PoolConnection
  readonly server: string
  constructor(raw: mysql.PoolConnection, server: string) {
    this.raw = raw
    this.server = server
  }

  /** Streams the rows of `sql` (see {@link RowStream}); the query stops with the connection. */
  stream(operation: string, sql: string, values: ReadonlyArray<unknown>, highWater: number): RowStream {
    // The callback connection under the promise one: its queries emit rows as they come.
    const raw = (this.raw as unknown as { readonly connection: CallbackConnection }).connection
    let rows: Array<Record<string, unknown>> = []
    let offset = 0
    let ended = false
    let paused = false
    let failure: MysqlError | undefined
    // A take waiting for a batch: woken once `wanted` rows are there, or the query is over.
    const arrival = Arrival.make(STREAM_WAIT_MS)
    let wanted = 0
    raw.query(sql, values as Array<unknown>)
      .on("result", (row) => {
        rows.push(row as Record<string, unknown>)
        const waiting = rows.length - offset
        if (!paused && waiting >= highWater) {
          paused = true
          raw.pause()
        }
        if (waiting >= wanted) arrival.wake()
      })
      .on("error", (cause) => {
        failure ??= new MysqlError({ server: this.server, operation, cause })
        arrival.wake()
      })
      .on("end", () => {
        ended = true
        arrival.wake()
      })
    const next = (n: number): ReadonlyArray<Record<string, unknown>> | undefined => {
      if (failure) throw failure
      if (offset === rows.length) return ended ? undefined : []
      const out = rows.slice(offset, offset + n)
      offset += out.length
      // Taken rows are dropped once they are as many as the ones a pause holds.
      if (offset === rows.length || offset >= highWater) {
        rows = rows.slice(offset)
        offset = 0
      }
      if (paused && rows.length - offset < highWater / 2) {
        paused = false
        raw.resume()
      }
      return out
    }
    const taken = (n: number) => Effect.try({ try: () => next(n), catch: (e) => e as MysqlError })
    return {
      // Whole batches while the query runs: a batch of a few rows costs the job as much as a full one.
      take: (n) =>
        Effect.suspend(() => {
          if (failure || ended || rows.length - offset >= n) return taken(n)
          wanted = n
          return Effect.andThen(arrival.wait, taken(n))
        })
    }
  }

  /** Runs `sql` (`?` placeholders, escaped by the client; `VALUES ?` takes an array of rows). */
  query<A = Array<Record<string, unknown>>>(operation: string, sql: string, values?: ReadonlyArray<unknown>): Effect.Effect<A, MysqlError> {
    return Effect.tryPromise({
      try: () => this.raw.query(sql, values as Array<unknown>).then(([rows]) => rows as A),
      catch: (cause) => new MysqlError({ server: this.server, operation, cause })
    })
  }
}

/**
 * The rows of one streamed query, taken a batch at a time. The server sends
 * them as the connection reads; past `highWater` rows waiting, the connection
 * pauses (the socket is not read, so the server waits), and resumes once they
 * are taken: memory stays bounded by `highWater` rows.
 */
export interface RowStream {
  /** Up to `n` rows, waiting a little for `n`; `undefined` once every row was taken. */
  readonly take: (n: number) => Effect.Effect<ReadonlyArray<Record<string, unknown>> | undefined, MysqlError>
}

/** How long a `take` waits for a whole batch before it hands out what there is (maybe nothing: the engine pulls again). */
const STREAM_WAIT_MS = 10

/** `name` quoted as an identifier (`db.table` as two). */
export const id = (name: string): string => mysql.escapeId(name)
