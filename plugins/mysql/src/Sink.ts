/**
 * The upsert sink, on the kit's idempotent mode (`INSERT … ON DUPLICATE KEY
 * UPDATE`, multi-row, a batch at a time), and the options of every table sink.
 */
import { Effect, type Scope } from "effect"
import { type Retry, type Sink, Transactional } from "@tributary/core"
import * as Client from "./Client.ts"
import * as Connection from "./Connection.ts"
import { insert, retryOf } from "./Rows.ts"

export interface TableOptions<A> {
  /** The table (`table` or `database.table`). */
  readonly table: string
  /** The columns written. */
  readonly columns: ReadonlyArray<string>
  /** A record's values, in the order of `columns` (default: its fields of those names). */
  readonly values?: ((a: A) => ReadonlyArray<unknown>) | undefined
  /** Rows per statement (default 1000; a statement must fit the server's `max_allowed_packet`). */
  readonly rowsPerStatement?: number | undefined
  readonly name?: string | undefined
  readonly maxParallelism?: number | undefined
  /** Retries what may be repeated when the server goes away (default: 5 retries, connection errors only). */
  readonly retry?: Partial<Retry.RetryOptions> | undefined
}

export interface UpsertOptions<A> extends TableOptions<A> {
  /** The columns of the table's primary key (or of a unique key, the only one the rows can collide on). */
  readonly key: ReadonlyArray<string>
}

/**
 * Upserts each batch (`INSERT … ON DUPLICATE KEY UPDATE` of the other columns),
 * the last record of each key in it, on the kit's idempotent mode. Exactly-once
 * when the `key` columns are the only key the rows can collide on and the
 * records replayed after a restore are those written before it, in the same
 * order (an exactly-once, deterministic pipeline, every record of a key on
 * one instance): the table then ends as a run without failure leaves it.
 */
export const upsert = <A>(options: UpsertOptions<A>): Effect.Effect<Sink.Sink<A, Client.MysqlClient>, Client.MysqlError, Client.MysqlClient> =>
  Effect.flatMap(Effect.service(Client.MysqlClient), ({ server }) => {
    const name = options.name ?? `mysql upsert ${options.table}`
    const stray = options.key.filter((k) => !options.columns.includes(k))
    if (options.key.length === 0 || stray.length > 0) {
      const reason = stray.length > 0 ? `key column ${stray.join(", ")} is not among the columns ${options.columns.join(", ")}` : "no key column"
      return Effect.fail(new Client.MysqlError({ server, operation: `upsert into table ${options.table}`, cause: new Error(reason) }))
    }
    const others = options.columns.filter((c) => !options.key.includes(c))
    // With nothing else to set, a duplicate leaves its row.
    const set = (others.length > 0 ? others : options.key.slice(0, 1)).map((c) => `${Connection.id(c)} = VALUES(${Connection.id(c)})`).join(", ")
    const rows = insert(options, ` ON DUPLICATE KEY UPDATE ${set}`)
    const at = options.key.map((k) => options.columns.indexOf(k))
    const single = options.key.length === 1 ? options.key[0]! : undefined
    // A record's own field when it is the row; else its values (a key of several columns as JSON).
    const key = single !== undefined && options.values === undefined
      ? (a: A) => (a as Record<string, unknown>)[single]
      : (a: A) => {
        const values = rows.values(a)
        return at.length === 1 ? values[at[0]!] : JSON.stringify(at.map((i) => values[i]))
      }
    return Effect.succeed(Transactional.idempotent<A, unknown, Client.MysqlClient | Scope.Scope>({
      name,
      key,
      maxParallelism: options.maxParallelism,
      retry: retryOf(server, options.retry),
      open: () => Effect.map(Connection.reconnecting(name), (query) => ({ upsert: (batch: ReadonlyArray<A>) => rows.run(query, batch) }))
    }))
  })
