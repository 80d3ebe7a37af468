/**
 * The PostgreSQL client of the connectors, as a Layer: it holds the connection
 * options, and each source split or sink instance opens its own pool
 * in its scope, so a job's connections close with the job. Every session
 * carries `application_name`, so they can be counted in `pg_stat_activity`.
 */
import { Context, Data, Effect, Layer, type Scope } from "effect"
import postgres from "postgres"

/** A call to PostgreSQL failed: names the server and user, and the table or column when one is at fault. */
export class PostgresError extends Data.TaggedError("PostgresError")<{
  /** `host:port/database`, without a password. */
  readonly server: string
  readonly user: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    const cause = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `PostgreSQL ${this.server} as ${this.user}: ${this.reason}${cause}`
  }
}

export interface PostgresClientOptions {
  /** Connection URL (default `PGURL` / `DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/test`). */
  readonly url?: string | undefined
  /** Overrides the URL's user. */
  readonly user?: string | undefined
  /** `application_name` of every session (default `tributary`): count them with `pg_stat_activity`. */
  readonly applicationName?: string | undefined
  /** Connections per pool (one pool per split or sink instance; default 2). */
  readonly max?: number | undefined
  /** Other options of the `postgres` client. */
  readonly options?: postgres.Options<{}> | undefined
}

/** The PostgreSQL client: where to connect, and how. */
export class PostgresClient extends Context.Service<PostgresClient, {
  readonly server: string
  readonly user: string
  readonly applicationName: string
  /** Opens a pool, checked with a first query, closed with the scope. */
  readonly connect: Effect.Effect<postgres.Sql, PostgresError, Scope.Scope>
  /** Fails with a `PostgresError` naming this server and user, and `reason`. */
  readonly fail: (reason: string) => (cause: unknown) => PostgresError
}>()("@tributary/postgres/PostgresClient") {}

const defaultUrl = () => process.env.PGURL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** The client from its options (connections are only opened by the connectors using it). */
export const make = (options: PostgresClientOptions = {}): PostgresClient["Service"] => {
  const url = new URL(options.url ?? defaultUrl())
  const user = options.user ?? (decodeURIComponent(url.username) || "postgres")
  const server = `${url.hostname}:${url.port || "5432"}${url.pathname}`
  const applicationName = options.applicationName ?? "tributary"
  const fail = (reason: string) => (cause: unknown) => new PostgresError({ server, user, reason, cause })
  const connect = Effect.acquireRelease(
    Effect.sync(() =>
      postgres(url.href, {
        max: options.max ?? 2,
        onnotice: () => {},
        // Its type query at connect is not awaited by anyone: a pool closed meanwhile would leave its rejection unhandled.
        fetch_types: false,
        ...options.options,
        username: user,
        connection: { ...options.options?.connection, application_name: applicationName }
      })
    ),
    // Every call was awaited by then, but for one interrupted (a cancelled read): no reason to wait for it.
    (sql) => Effect.promise(() => sql.end({ timeout: 0 }))
  ).pipe(Effect.tap((sql) => Effect.tryPromise({ try: () => sql`select 1`, catch: fail("cannot connect") })))
  return { server, user, applicationName, connect, fail }
}

/** The client as a Layer. */
export const layer = (options: PostgresClientOptions = {}): Layer.Layer<PostgresClient> => Layer.succeed(PostgresClient, make(options))
