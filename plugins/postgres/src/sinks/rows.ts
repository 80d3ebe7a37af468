/** Multi-row inserts, chunked under the `postgres` client's limit of fewer than 65 534 parameters per statement. */
import type postgres from "postgres"
import { ident } from "../sql.ts"

const MAX_PARAMETERS = 65_533

/** The columns written: those given, or the first row's. */
export const columnsOf = (columns: ReadonlyArray<string> | undefined, rows: ReadonlyArray<postgres.Row>): ReadonlyArray<string> =>
  columns ?? Object.keys(rows[0] ?? {})

/** Inserts `rows` into `table` in as few statements as the parameter limit allows, each followed by `suffix` (an `on conflict` clause). */
export const insert = async (
  sql: postgres.Sql | postgres.ReservedSql | postgres.TransactionSql,
  table: string,
  columns: ReadonlyArray<string>,
  rows: ReadonlyArray<postgres.Row>,
  suffix = ""
): Promise<void> => {
  const chunk = Math.max(1, Math.floor(MAX_PARAMETERS / Math.max(1, columns.length)))
  for (let i = 0; i < rows.length; i += chunk) {
    const part = i === 0 && rows.length <= chunk ? rows : rows.slice(i, i + chunk)
    await sql`insert into ${sql(table)} ${sql(part as Array<postgres.Row>, columns as Array<string>)}${sql.unsafe(suffix)}`
  }
}

/** Deletes the rows whose `keys` columns equal those of one of `rows`, chunked as inserts are. */
export const remove = async (
  sql: postgres.Sql,
  table: string,
  keys: ReadonlyArray<string>,
  rows: ReadonlyArray<postgres.Row>
): Promise<void> => {
  const chunk = Math.max(1, Math.floor(MAX_PARAMETERS / keys.length))
  const columns = `(${keys.map(ident).join(", ")})`
  for (let i = 0; i < rows.length; i += chunk) {
    const part = rows.slice(i, i + chunk)
    const params: Array<postgres.ParameterOrJSON<never>> = []
    const tuples = part.map((row) => `(${keys.map((k) => (params.push(row[k]), `$${params.length}`)).join(", ")})`)
    await sql.unsafe(`delete from ${ident(table)} where ${columns} in (${tuples.join(", ")})`, params)
  }
}
