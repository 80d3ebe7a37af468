/**
 * Enriching a stream from a table (Jet's `mapUsingService`, Flink's lookup
 * join): each batch's keys are looked up with one query
 * (`WHERE key = ANY($1)`), optionally through a cache bounded in size and age.
 */
import { Duration, Effect } from "effect"
import { Stage } from "@tributary/core"
import type postgres from "postgres"
import { PostgresClient } from "../Client.ts"
import { ident, reasonOf } from "../sql.ts"

export interface LookupOptions<A, B> {
  /** The table looked up (`schema.table` allowed). */
  readonly table: string
  /** Its key column: a primary key or unique index, so a key finds one row. */
  readonly key: string
  /** The key of a record (a number or a string; `null` / `undefined`: no row). */
  readonly keyOf: (record: A) => string | number | bigint | null | undefined
  /** What a record becomes with its row (`undefined` when the table has none). */
  readonly join: (record: A, row: postgres.Row | undefined) => B
  /** The columns fetched (default all). */
  readonly columns?: ReadonlyArray<string> | undefined
  /**
   * Rows kept per instance, each for `ttl`, the least recently used dropped past `maxSize`;
   * keys without a row are kept too. Without it, every batch asks the database.
   */
  readonly cache?: { readonly ttl: Duration.Input; readonly maxSize: number } | undefined
}

/** The keys as an array literal, `{"a","b"}` (the pools do not fetch the array types that would serialize a JS array). */
const arrayLiteral = (keys: Iterable<string>) => {
  const quoted: Array<string> = []
  for (const k of keys) quoted.push(`"${k.replace(/[\\"]/g, (c) => `\\${c}`)}"`)
  return `{${quoted.join(",")}}`
}

interface Cached {
  readonly row: postgres.Row | undefined
  readonly at: number
}

/** The lookup of one instance: a pool of its own and its cache. */
const lookup = <A, B>(options: LookupOptions<A, B>) =>
  Effect.gen(function*() {
    const client = yield* PostgresClient
    const sql = yield* client.connect
    const what = `lookup in ${options.table}`
    const fail = (reason: string) => (cause: unknown) => client.fail(reasonOf(`${what}: ${reason}`, cause))(cause)
    // The key's type, so the keys travel as one array parameter that the key's index serves; a
    // missing table or column fails here, at start.
    const [column] = yield* Effect.tryPromise({
      try: () =>
        sql<Array<{ type: string }>>`select format_type(atttypid, atttypmod) as type from pg_attribute
          where attrelid = ${options.table}::regclass and attname = ${options.key} and attnum > 0 and not attisdropped`,
      catch: fail("cannot read the key's type")
    })
    if (!column) return yield* Effect.fail(client.fail(`${what}: no column ${options.key}`)(undefined))
    const columns = options.columns ? options.columns.map(ident).join(", ") : "*"
    const text = `select ${columns}, ${ident(options.key)}::text as "__key" from ${ident(options.table)} where ${ident(options.key)} = any($1::text::${column.type}[])`
    const ttl = options.cache ? Duration.toMillis(options.cache.ttl) : 0
    const maxSize = options.cache?.maxSize ?? 0
    const cache = new Map<string, Cached>()
    return (batch: ReadonlyArray<A>) =>
      Effect.gen(function*() {
        const now = Date.now()
        const keys = batch.map((r) => {
          const k = options.keyOf(r)
          return k === null || k === undefined ? undefined : String(k)
        })
        const found = new Map<string, postgres.Row | undefined>()
        const missing = new Set<string>()
        for (const k of keys) {
          if (k === undefined || found.has(k) || missing.has(k)) continue
          const hit = cache.get(k)
          if (hit && now - hit.at < ttl) {
            // Re-inserted: the map's order is the order of use, oldest first.
            cache.delete(k)
            cache.set(k, hit)
            found.set(k, hit.row)
          } else missing.add(k)
        }
        if (missing.size > 0) {
          const rows = yield* Effect.tryPromise({ try: () => sql.unsafe(text, [arrayLiteral(missing)]), catch: fail("cannot read") })
          for (const k of missing) found.set(k, undefined)
          for (const row of rows) {
            const { __key, ...rest } = row
            found.set(__key as string, rest)
          }
          if (maxSize > 0) {
            for (const k of missing) {
              cache.delete(k)
              cache.set(k, { row: found.get(k), at: now })
            }
            for (const oldest of cache.keys()) {
              if (cache.size <= maxSize) break
              cache.delete(oldest)
            }
          }
        }
        return batch.map((r, i) => options.join(r, keys[i] === undefined ? undefined : found.get(keys[i]!)))
      })
  })

/**
 * Enriches each record with its row of `options.table`: one query per batch
 * for the keys not in the cache. A stage of the pipeline:
 * `stage.pipe(PostgresLookup.join({ table, key, keyOf, join }))`. The records
 * lose their event time (give them timestamps after it).
 */
export const join = <A, B>(options: LookupOptions<A, B>) =>
<E, R, T>(self: Stage.Stage<A, Stage.Unkeyed, E, R, T>) =>
  Stage.mapBatchedUsingService(self, lookup(options), (run, batch: ReadonlyArray<A>) => run(batch))
