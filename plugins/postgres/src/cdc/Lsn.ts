/**
 * Log sequence numbers: a position in PostgreSQL's write-ahead log, 64 bits
 * written `X/Y` (two hex halves). Kept as `bigint` to compare, as text in
 * records and positions (plain data).
 */

/** `X/Y` → 64-bit number. */
export const parse = (lsn: string): bigint => {
  const [hi, lo] = lsn.split("/")
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)
}

/** 64-bit number → `X/Y`, as PostgreSQL prints it. */
export const format = (lsn: bigint): string =>
  `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
