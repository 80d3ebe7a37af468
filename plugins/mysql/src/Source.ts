/**
 * A table read in key ranges (Flink's JDBC `partition.column` scan): the
 * range of a numeric or date column is cut into splits on the kit's
 * `Splits.make`, each streamed in key order by one query (the connection
 * paused while `fetchSize` rows wait: bounded memory), inside its own
 * consistent-snapshot, read-only transaction. A split's position is the last key it read, so a restored or
 * rescaled job resumes each split after it.
 */
import { Data, Effect, Result, Schema } from "effect"
import { type Retry, Splits, type Source } from "@tributary/core"
import * as Client from "./Client.ts"
import * as Connection from "./Connection.ts"

export interface QueryOptions<A> {
  /** The table (`table` or `database.table`). */
  readonly table: string
  /**
   * The split column: numeric or date, unique (a primary key), indexed. The
   * ranges cut it, rows come in its order, and a split's position is its last value read.
   */
  readonly key: string
  /** The columns read (default all); the key is always read. */
  readonly columns?: ReadonlyArray<string> | undefined
  /** An SQL condition rows must meet, as written (trusted text). */
  readonly where?: string | undefined
  /** Key ranges (default 8). Fixed, not per instance: a snapshot keeps a position per split. */
  readonly splits?: number | undefined
  /**
   * The key range to cut, `[min, max]` (default: the table's `MIN`/`MAX` at the
   * start). The first split has no lower bound and the last no upper one, so
   * rows outside are read too; give it for a table that grows, so that a
   * restore cuts the same splits.
   */
  readonly bounds?: readonly [number | Date, number | Date] | undefined
  /** Rows a split holds at most, streamed ahead of the job (default 10 000, at least the job's batch size): past them the connection pauses. */
  readonly fetchSize?: number | undefined
  /**
   * Decodes each row (a batch at a time); a row that does not decode fails the
   * job with a `MysqlRowError`. For dead letters instead, read raw rows and put
   * `Stage.decode(schema, { deadLetters })` right after the source.
   */
  readonly schema?: Schema.ConstraintDecoder<A> | undefined
  readonly name?: string | undefined
  /** Reopens a split at its position when the server goes away (default: 5 retries, connection errors only). */
  readonly retry?: Partial<Retry.RetryOptions> | undefined
}

/** A row of a query source did not decode: names the table, the split, the position before the batch and the row. */
export class MysqlRowError extends Data.TaggedError("MysqlRowError")<{
  readonly table: string
  readonly split: string
  /** The last key read before the row's batch (undefined: the split's start). */
  readonly position: unknown
  readonly row: unknown
  readonly cause: unknown
}> {
  override get message() {
    return `table ${this.table}, split ${this.split}, after key ${String(this.position)}: row ${JSON.stringify(this.row)} does not decode: ${
      this.cause instanceof Error ? this.cause.message : String(this.cause)
    }`
  }
}

interface KeyRange extends Splits.Split {
  /** Inclusive; undefined: unbounded. Dates as epoch milliseconds. */
  readonly from: number | undefined
  /** Exclusive; undefined: unbounded. */
  readonly to: number | undefined
  readonly dates: boolean
}

type Row = Record<string, unknown>

const asNumber = (v: unknown): number => (v instanceof Date ? v.getTime() : Number(v))

/** `count` ranges over `[min, max]`, cut at integers when both are integers; the first and last open-ended. */
const cut = (table: string, key: string, min: number, max: number, count: number, dates: boolean): Array<KeyRange> => {
  const integral = Number.isInteger(min) && Number.isInteger(max)
  const step = (max - min + (integral ? 1 : 0)) / count
  const cuts: Array<number> = []
  for (let i = 1; i < count; i++) {
    const at = integral ? min + Math.floor(i * step) : min + i * step
    if (at > (cuts.at(-1) ?? -Infinity) && at > min) cuts.push(at)
  }
  const edges = [undefined, ...cuts, undefined]
  return edges.slice(1).map((to, i) => {
    const from = edges[i]
    return { id: `${table}.${key}[${from ?? "-inf"},${to ?? "+inf"})`, from, to, dates }
  })
}

/**
 * A bounded, rescalable source of the rows of `options.table`, split by key
 * range. Each split reads at its own consistent snapshot (MariaDB cannot share
 * one snapshot between connections), taken when the split opens.
 */
export const query = <A = Row>(options: QueryOptions<A>): Effect.Effect<Source.Source<A, Client.MysqlClient>, never, Client.MysqlClient> =>
  Effect.map(Effect.service(Client.MysqlClient), ({ server }) => {
    const name = options.name ?? `mysql ${options.table}`
    const table = Connection.id(options.table)
    const key = Connection.id(options.key)
    const columns = options.columns ? [...new Set([options.key, ...options.columns])].map(Connection.id).join(", ") : "*"
    const where = options.where ? ` AND (${options.where})` : ""
    const reading = `reading table ${options.table} by ${options.key}`
    const decode = options.schema && Schema.decodeUnknownResult(options.schema)

    const enumerate = () =>
      Effect.scoped(Effect.gen(function*() {
        const connection = yield* Connection.connect(name)
        // Names a missing table or column before anything is read.
        yield* connection.query(reading, `SELECT ${columns} FROM ${table} WHERE 1 = 0`)
        const [lo, hi] = options.bounds ??
          (yield* Effect.map(connection.query<Array<Row>>(reading, `SELECT MIN(${key}) AS lo, MAX(${key}) AS hi FROM ${table} WHERE 1 = 1${where}`), (rows) =>
            [rows[0]!.lo, rows[0]!.hi]))
        if (lo === null || hi === null) return [{ id: `${options.table}.${options.key}[all]`, from: undefined, to: undefined, dates: false }]
        return cut(options.table, options.key, asNumber(lo), asNumber(hi), options.splits ?? 8, lo instanceof Date)
      }))

    const open = (split: KeyRange, position: unknown, batchSize: number) =>
      Effect.gen(function*() {
        const connection = yield* Connection.connect(name)
        yield* connection.query(reading, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        const value = (n: number) => (split.dates ? new Date(n) : n)
        const range = [split.from === undefined ? "" : ` AND ${key} >= ?`, split.to === undefined ? "" : ` AND ${key} < ?`].join("")
        const bounds = [split.from, split.to].filter((b) => b !== undefined).map(value)
        let last = position as number | undefined
        const after = last === undefined ? "" : ` AND ${key} > ?`
        const rows = connection.stream(
          reading,
          `SELECT ${columns} FROM ${table} WHERE 1 = 1${range}${after}${where} ORDER BY ${key}`,
          last === undefined ? bounds : [...bounds, value(last)],
          Math.max(options.fetchSize ?? 10_000, batchSize)
        )
        /** A batch decoded, and the position moved to its last key. */
        const decoded = (batch: ReadonlyArray<Row>): Effect.Effect<ReadonlyArray<A>, MysqlRowError> => {
          if (batch.length === 0) return Effect.succeed([])
          let out = batch as unknown as ReadonlyArray<A>
          if (decode) {
            const values = new Array<A>(batch.length)
            for (let i = 0; i < batch.length; i++) {
              const result = decode(batch[i])
              if (Result.isFailure(result)) {
                return Effect.fail(new MysqlRowError({ table: options.table, split: split.id, position: last, row: batch[i], cause: result.failure }))
              }
              values[i] = result.success
            }
            out = values
          }
          last = asNumber(batch[batch.length - 1]![options.key])
          return Effect.succeed(out)
        }
        const reader: Splits.SplitReader<A> = {
          position: () => last,
          pull: Effect.flatMap(rows.take(batchSize), (batch) => (batch === undefined ? Effect.succeed(undefined) : decoded(batch)))
        }
        return reader
      })

    return Splits.make<A, KeyRange, Client.MysqlClient>({
      name,
      bounded: true,
      enumerate,
      open,
      retry: { server, retryable: Client.isConnectionError, ...options.retry }
    })
  })
