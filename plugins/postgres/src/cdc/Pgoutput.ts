/**
 * A decoder of `pgoutput`, PostgreSQL's logical replication protocol
 * (version 1, text values): it turns the messages of the replication stream
 * into transactions of row changes. Relation messages describe a table before
 * its first change in a session; a transaction's changes arrive between its
 * Begin and Commit, only once it committed, so a transaction is emitted whole.
 */

import { format as formatLsn } from "./Lsn.ts"

/** A row as PostgreSQL prints it: column name → text value, `null` for SQL NULL. */
export type Row = Readonly<Record<string, string | null>>

/** One row change of a committed transaction. */
export interface Change {
  readonly op: "insert" | "update" | "delete"
  /** `schema.table`. */
  readonly table: string
  /**
   * The old row: for a delete, its replica identity (the primary key, or every
   * column with `REPLICA IDENTITY FULL`); for an update, only with
   * `REPLICA IDENTITY FULL` (or when the key changed).
   */
  readonly before?: Row | undefined
  /** The new row of an insert or update. */
  readonly after?: Row | undefined
  /** The commit LSN of its transaction (`X/Y`). */
  readonly lsn: string
  /** When its transaction committed (milliseconds since the epoch). */
  readonly commitTime: number
}

interface Relation {
  readonly table: string
  readonly columns: ReadonlyArray<string>
  readonly keys: ReadonlyArray<boolean>
}

/** A committed transaction: its changes, in order, and where it ends in the WAL. */
export interface Transaction {
  readonly commit: bigint
  readonly end: bigint
  readonly changes: ReadonlyArray<Change>
}

/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
export const PG_EPOCH_US = 946_684_800_000_000n

/**
 * Decodes one session's messages (relations are remembered across them).
 * `feed` takes the body of an XLogData message and answers the transaction it
 * completes, if any; `accept` says which tables to keep changes of.
 */
export const decoder = (accept: (table: string) => boolean) => {
  const relations = new Map<number, Relation>()
  // A change's commit LSN and time are known only at Commit: filled in then.
  let pending: Array<{ -readonly [K in keyof Change]: Change[K] }> = []

  const tuple = (buf: Buffer, at: number, rel: Relation, keysOnly: boolean, old: Row | undefined): [Row, number] => {
    const n = buf.readInt16BE(at)
    at += 2
    const row: Record<string, string | null> = {}
    for (let i = 0; i < n; i++) {
      const kind = buf[at++]
      const name = rel.columns[i]!
      if (kind === 0x74) { // 't': text
        const len = buf.readInt32BE(at)
        row[name] = buf.toString("utf8", at + 4, at + 4 + len)
        at += 4 + len
      } else if (kind === 0x75) { // 'u': an unchanged TOASTed value, known only from the old row
        if (old && name in old) row[name] = old[name]!
      } else if (!keysOnly || rel.keys[i]) row[name] = null
    }
    return [row, at]
  }

  const change = (buf: Buffer) => {
    const rel = relations.get(buf.readInt32BE(1))
    if (!rel) throw new Error(`pgoutput: a change of relation ${buf.readInt32BE(1)} before its description`)
    if (!accept(rel.table)) return
    const tag = buf[0]
    let at = 5
    let before: Row | undefined
    // An update or delete may carry the old row: its key ('K') or all of it ('O').
    if (buf[at] === 0x4b || buf[at] === 0x4f) {
      ;[before, at] = tuple(buf, at + 1, rel, buf[at] === 0x4b, undefined)
    }
    if (tag === 0x44) return void pending.push({ op: "delete", table: rel.table, before, after: undefined, lsn: "", commitTime: 0 })
    const [after] = tuple(buf, at + 1, rel, false, before)
    pending.push({ op: tag === 0x49 ? "insert" : "update", table: rel.table, before, after, lsn: "", commitTime: 0 })
  }

  const cstring = (buf: Buffer, at: number): [string, number] => {
    const end = buf.indexOf(0, at)
    return [buf.toString("utf8", at, end), end + 1]
  }

  const relation = (buf: Buffer) => {
    const id = buf.readInt32BE(1)
    const [schema, a] = cstring(buf, 5)
    const [name, b] = cstring(buf, a)
    let at = b + 1 // replica identity setting
    const n = buf.readInt16BE(at)
    at += 2
    const columns: Array<string> = []
    const keys: Array<boolean> = []
    for (let i = 0; i < n; i++) {
      keys.push((buf[at]! & 1) === 1)
      const [column, next] = cstring(buf, at + 1)
      columns.push(column)
      at = next + 8 // type oid, type modifier
    }
    relations.set(id, { table: `${schema}.${name}`, columns, keys })
  }

  const commit = (buf: Buffer): Transaction => {
    const commitLsn = buf.readBigUInt64BE(2)
    const lsn = formatLsn(commitLsn)
    const commitTime = Number((buf.readBigInt64BE(18) + PG_EPOCH_US) / 1000n)
    for (const c of pending) {
      c.lsn = lsn
      c.commitTime = commitTime
    }
    const tx: Transaction = { commit: commitLsn, end: buf.readBigUInt64BE(10), changes: pending }
    pending = []
    return tx
  }

  const truncated = (buf: Buffer) => {
    const n = buf.readInt32BE(1)
    const tables = Array.from({ length: n }, (_, i) => relations.get(buf.readInt32BE(6 + 4 * i))?.table ?? "?").filter(accept)
    return tables.length === 0 ? undefined : `TRUNCATE of ${tables.join(", ")} cannot be replicated as row changes: publish only insert, update, delete`
  }

  return (buf: Buffer): Transaction | undefined => {
    switch (buf[0]) {
      case 0x42: // 'B'egin
        pending = []
        return undefined
      case 0x43: // 'C'ommit
        return commit(buf)
      case 0x52: // 'R'elation
        relation(buf)
        return undefined
      case 0x49: // 'I'nsert
      case 0x55: // 'U'pdate
      case 0x44: // 'D'elete
        change(buf)
        return undefined
      case 0x54: { // 'T'runcate: no row changes to emit, yet the table no longer matches them
        const error = truncated(buf)
        if (error) throw new Error(error)
        return undefined
      }
      default: // Origin, Type, Message: not row changes
        return undefined
    }
  }
}
