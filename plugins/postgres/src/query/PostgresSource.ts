/**
 * A table or query read in parallel by key ranges (Flink's JDBC partitioned
 * scan): the integer `splitColumn` is cut into `splits` ranges between its
 * bounds, each a split of `Splits.make`, so it restores with any number of
 * instances. Each split streams with a cursor, in key order, inside a
 * repeatable-read read-only transaction; its position is the last key read and
 * it resumes after it (`WHERE col > last`), so the split column must be unique.
 */
import { Effect } from "effect"
import { type Source, Splits } from "@tributary/core"
import type postgres from "postgres"
import { PostgresClient } from "../Client.ts"
import { ident, reasonOf } from "../sql.ts"
import * as ExportedSnapshot from "./ExportedSnapshot.ts"

type Bound = bigint | number | string

export interface QueryOptions {
  /** The source's name (default `postgres <table>`, or `postgres query`). */
  readonly name?: string | undefined
  /** The table to read (`schema.table` allowed); or give `query`. */
  readonly table?: string | undefined
  /** Columns of `table` to read (default all). */
  readonly columns?: ReadonlyArray<string> | undefined
  /** A query to read instead of a table, such as a join; the split column is one of its output columns. */
  readonly query?: string | undefined
  /** An integer column, unique: the splits are ranges of it, and each resumes after the last key it read. */
  readonly splitColumn: string
  /** How many key ranges to cut (default 8): at most this many instances read at once. */
  readonly splits?: number | undefined
  /**
   * The lowest and highest key (default: `min` and `max` of the column when the job starts).
   * The first and last splits are open-ended, so keys outside still get read. Give them when
   * the key range may change between a snapshot and its restore: the splits (and their saved
   * positions) are named by their ranges.
   */
  readonly bounds?: readonly [Bound, Bound] | undefined
  /**
   * Read every split of this process at one snapshot of the database (default true): a
   * transaction exports it while the job's instances here are open. Splits read by other
   * processes use a snapshot of their own (each split is always consistent in itself).
   */
  readonly exportSnapshot?: boolean | undefined
}

interface Range extends Splits.Split {
  readonly from: bigint | undefined
  readonly to: bigint | undefined
}

/** `splits` ranges cutting `[lo, hi]`, the first and last open-ended. */
const ranges = (lo: bigint, hi: bigint, splits: number): ReadonlyArray<Range> => {
  if (!Number.isInteger(splits) || splits < 1) throw new RangeError(`${splits} splits`)
  const n = BigInt(splits)
  const span = hi >= lo ? hi - lo + 1n : 1n
  const step = (span + n - 1n) / n
  return Array.from({ length: splits }, (_, i) => {
    const from = i === 0 ? undefined : lo + BigInt(i) * step
    const to = i === splits - 1 ? undefined : lo + BigInt(i + 1) * step
    return { id: `${from ?? ""}..${to ?? ""}`, from, to }
  })
}

/** Reads a table or query, split by key ranges; records are rows as the `postgres` client returns them. */
export const query = (options: QueryOptions): Source.Source<postgres.Row, PostgresClient> => {
  const name = options.name ?? (options.table ? `postgres ${options.table}` : "postgres query")
  const what = options.table ?? "the query"
  const base = options.query ?? `select ${options.columns?.map(ident).join(", ") ?? "*"} from ${ident(options.table ?? "")}`
  const col = `q.${ident(options.splitColumn)}`
  const splits = options.splits ?? 8
  const shared = options.exportSnapshot === false ? undefined : ExportedSnapshot.make()
  const from = `from (${base}) as q`

  return Splits.make({
    name,
    bounded: true,
    enumerate: () =>
      Effect.gen(function*() {
        const client = yield* PostgresClient
        // Also the check, at start, that the table and column exist.
        const [lo, hi] = yield* Effect.scoped(Effect.gen(function*() {
          const sql = yield* client.connect
          const [row] = yield* Effect.tryPromise({
            try: () =>
              sql.unsafe<Array<{ lo: string | null; hi: string | null }>>(
                options.bounds ? `select null as lo, null as hi ${from} where ${col} is null limit 0` : `select min(${col})::text as lo, max(${col})::text as hi ${from}`
              ),
            catch: (cause) => client.fail(reasonOf(`cannot read ${what}, split by ${options.splitColumn}`, cause))(cause)
          })
          return options.bounds ?? [row?.lo ?? 0, row?.hi ?? 0]
        }))
        const cut = yield* Effect.try({
          try: () => ranges(BigInt(lo), BigInt(hi), splits),
          catch: client.fail(`cannot split ${what} by ${options.splitColumn} into ${splits}: an integer column and a positive number of splits needed (bounds ${lo}, ${hi})`)
        })
        if (shared) yield* shared.hold
        return cut
      }),
    open: (range, position, batchSize) =>
      Effect.gen(function*() {
        const client = yield* PostgresClient
        const sql = yield* client.connect
        const conn = yield* Effect.tryPromise({ try: () => sql.reserve(), catch: client.fail(`cannot open split ${range.id} of ${name}`) })
        const conditions: Array<string> = []
        const params: Array<string> = []
        const bound = (op: string, value: unknown) => {
          params.push(String(value))
          conditions.push(`${col} ${op} $${params.length}`)
        }
        if (range.from !== undefined) bound(">=", range.from)
        if (range.to !== undefined) bound("<", range.to)
        if (position != null) bound(">", position)
        const text = `select * ${from}${conditions.length > 0 ? ` where ${conditions.join(" and ")}` : ""} order by ${col}`
        yield* Effect.tryPromise({
          try: async () => {
            await conn.unsafe("begin isolation level repeatable read read only")
            // Held by this instance since it enumerated its splits.
            const id = shared?.current()
            if (id !== undefined) await conn.unsafe(`set transaction snapshot '${id}'`)
          },
          catch: client.fail(`cannot open split ${range.id} of ${name}`)
        })
        const rows = conn.unsafe(text, params).cursor(batchSize)[Symbol.asyncIterator]()
        // Stops the cursor; the pool then closes with the split's scope.
        yield* Effect.addFinalizer(() => Effect.promise(() => Promise.resolve(rows.return?.()).catch(() => undefined)))
        // `null` before the first row: the split's start, a position a dead letter can name.
        let last = position ?? null
        const reader: Splits.SplitReader<postgres.Row> = {
          pull: Effect.map(
            // A cursor whose query has ended answers `{ done: true }` itself, not a promise of it.
            Effect.tryPromise({ try: () => Promise.resolve(rows.next()), catch: client.fail(`cannot read split ${range.id} of ${name}`) }),
            (next) => {
              if (next.done) return undefined
              const batch = next.value as ReadonlyArray<postgres.Row>
              if (batch.length > 0) last = String(batch[batch.length - 1]![options.splitColumn])
              return batch
            }
          ),
          position: () => last
        }
        return reader
      })
  })
}
