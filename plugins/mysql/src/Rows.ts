/** Records as rows: multi-row `INSERT` statements a batch at a time, shared by the sinks. */
import { Effect } from "effect"
import type { Retry } from "@tributary/core"
import * as Client from "./Client.ts"
import * as Connection from "./Connection.ts"
import type { TableOptions } from "./Sink.ts"

/** The statement inserting rows of `options` (`VALUES ?`, then `suffix`) and each record's values. */
export const insert = <A>(options: TableOptions<A>, suffix = "") => {
  const { columns } = options
  const sql = `INSERT INTO ${Connection.id(options.table)} (${columns.map(Connection.id).join(", ")}) VALUES ?${suffix}`
  const values = options.values ?? ((a: A) => columns.map((c) => (a as Record<string, unknown>)[c]))
  const per = options.rowsPerStatement ?? 1000
  const operation = `writing table ${options.table}`
  /** Runs the inserts of `batch` with `query`, `per` rows a statement. */
  const run = (
    query: (operation: string, sql: string, values: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>,
    batch: ReadonlyArray<A>
  ) =>
    Effect.suspend(() => {
      const statements: Array<Effect.Effect<unknown, unknown>> = []
      for (let i = 0; i < batch.length; i += per) statements.push(query(operation, sql, [batch.slice(i, i + per).map(values)]))
      return Effect.all(statements, { discard: true })
    })
  return { values, run }
}

/** The kit's retry options for the client's server, retrying connection errors. */
export const retryOf = (server: string, retry: Partial<Retry.RetryOptions> | undefined): Retry.RetryOptions => ({
  server,
  retryable: Client.isConnectionError,
  ...retry
})

