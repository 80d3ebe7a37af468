/**
 * The MySQL / MariaDB client, as a Layer: a `mysql2` pool that every source
 * split and sink instance takes its own connections from. A connection is
 * closed (not kept idle) when the split or the job that took it ends, so a
 * finished job leaves no session behind on the server.
 */
import { Context, Data, Effect, Layer } from "effect"
import * as mysql from "mysql2/promise"

/** Where and how to connect; the defaults are a local server's. */
export interface MysqlConfig {
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Default `3306`. */
  readonly port?: number | undefined
  /** Default `root`. */
  readonly user?: string | undefined
  /** Never shown in errors. */
  readonly password?: string | undefined
  /** The default database of unqualified table names (default `test`). */
  readonly database?: string | undefined
  /** At most this many connections open at once (default 16); a split or a sink instance holds one or two. */
  readonly connectionLimit?: number | undefined
  /** Any other `mysql2` pool option (timezone, ssl, connectAttributes…). */
  readonly options?: mysql.PoolOptions | undefined
}

/** A `mysql2` pool and the server it talks to, as named in errors. */
export class MysqlClient extends Context.Service<MysqlClient, {
  readonly pool: mysql.Pool
  /** `mysql://user@host:port/database`: the server, without the password. */
  readonly server: string
}>()("@tributary/mysql/MysqlClient") {}

/** The client for `config` (default `root@127.0.0.1:3306/test`); the pool ends with the layer. */
export const layer = (config: MysqlConfig = {}): Layer.Layer<MysqlClient> =>
  Layer.effect(
    MysqlClient,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() =>
          mysql.createPool({
            host: config.host ?? "127.0.0.1",
            port: config.port ?? 3306,
            user: config.user ?? "root",
            password: config.password,
            database: config.database ?? "test",
            connectionLimit: config.connectionLimit ?? 16,
            ...config.options
          })
        ),
        (pool) => Effect.promise(() => pool.end().catch(() => undefined))
      ),
      (pool) => ({
        pool,
        server: `mysql://${config.user ?? "root"}@${config.host ?? "127.0.0.1"}:${config.port ?? 3306}/${config.database ?? "test"}`
      })
    )
  )

/** A statement failed: names the server and what was being done (the table, the transaction). */
export class MysqlError extends Data.TaggedError("MysqlError")<{
  readonly server: string
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    return `${this.server}: ${this.operation}: ${this.cause instanceof Error ? this.cause.message : JSON.stringify(this.cause)}`
  }
}

/** Errors of a server gone away (refused, reset, shut down, killed): worth a retry. */
const CONNECTION_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "PROTOCOL_CONNECTION_LOST",
  "ER_SERVER_SHUTDOWN",
  "ER_CONNECTION_KILLED",
  "ER_CON_COUNT_ERROR"
])

const codeOf = (cause: unknown): unknown => (rootOf(cause) as { code?: unknown } | null)?.code

/** Whether `cause` is a lost or refused connection (for the kit's `retry`'s `retryable`). */
export const isConnectionError = (cause: unknown): boolean => {
  const code = codeOf(cause) as string
  // mysql2 marks a connection it has given up as fatal (a closed socket has no code).
  return CONNECTION_ERRORS.has(code) || (code === undefined && (rootOf(cause) as { fatal?: boolean } | null)?.fatal === true)
}

const rootOf = (cause: unknown): unknown => (cause instanceof MysqlError ? rootOf(cause.cause) : cause)
