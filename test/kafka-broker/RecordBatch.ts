/**
 * Record batch v2 (magic 2) headers. The broker stores batches as the producer sent them and only rewrites the
 * fields the CRC does not cover (base offset, leader epoch), so compressed batches pass through untouched.
 */
import { crc32c } from "./Crc32c.ts"
import { Reader, Writer } from "./Codec.ts"

/** The header fields of one stored batch; `bytes` is the whole batch. */
export interface Batch {
  readonly baseOffset: number
  readonly lastOffset: number
  readonly maxTimestamp: number
  readonly producerId: number
  readonly producerEpoch: number
  readonly baseSequence: number
  readonly count: number
  readonly transactional: boolean
  readonly control: boolean
  readonly bytes: Buffer
}

/** Raised for a malformed batch (becomes CORRUPT_MESSAGE on the wire). */
export class CorruptBatch extends Error {}

const HEADER = 61
const ATTR_TRANSACTIONAL = 0x10
const ATTR_CONTROL = 0x20

/** Parses the header of the batch in `bytes` (one full batch). */
export const header = (bytes: Buffer): Batch => {
  if (bytes.length < HEADER) throw new CorruptBatch("record batch shorter than its header")
  if (bytes.readInt8(16) !== 2) throw new CorruptBatch(`unsupported record batch magic ${bytes.readInt8(16)}`)
  if (bytes.readInt32BE(8) !== bytes.length - 12) throw new CorruptBatch("record batch length mismatch")
  const attributes = bytes.readInt16BE(21)
  const baseOffset = Number(bytes.readBigInt64BE(0))
  return {
    baseOffset,
    lastOffset: baseOffset + bytes.readInt32BE(23),
    maxTimestamp: Number(bytes.readBigInt64BE(35)),
    producerId: Number(bytes.readBigInt64BE(43)),
    producerEpoch: bytes.readInt16BE(51),
    baseSequence: bytes.readInt32BE(53),
    count: bytes.readInt32BE(57),
    transactional: (attributes & ATTR_TRANSACTIONAL) !== 0,
    control: (attributes & ATTR_CONTROL) !== 0,
    bytes
  }
}

/** Splits a Produce request's record set into batches, checking each CRC-32C. */
export const split = (records: Buffer): Array<Batch> => {
  const out: Array<Batch> = []
  let at = 0
  while (at + 12 <= records.length) {
    const end = at + 12 + records.readInt32BE(at + 8)
    if (end > records.length) throw new CorruptBatch("truncated record batch")
    const bytes = Buffer.from(records.subarray(at, end))
    const batch = header(bytes)
    if (crc32c(bytes.subarray(21)) !== bytes.readUInt32BE(17)) throw new CorruptBatch("record batch CRC mismatch")
    out.push(batch)
    at = end
  }
  return out
}

/** Returns `batch` moved to `baseOffset` (the bytes are rewritten in place: they belong to the log). */
export const rebase = (batch: Batch, baseOffset: number): Batch => {
  batch.bytes.writeBigInt64BE(BigInt(baseOffset), 0)
  batch.bytes.writeInt32BE(0, 12)
  return { ...batch, baseOffset, lastOffset: baseOffset + (batch.lastOffset - batch.baseOffset) }
}

/** A control batch holding one COMMIT or ABORT marker for a producer's transaction. */
export const controlBatch = (
  baseOffset: number,
  producerId: number,
  producerEpoch: number,
  commit: boolean,
  timestamp: number
): Batch => {
  const key = new Writer().int16(0).int16(commit ? 1 : 0).toBuffer()
  const value = new Writer().int16(0).int32(0).toBuffer()
  const record = new Writer()
    .int8(0)
    .varint(0)
    .varint(0)
    .varint(key.length)
    .raw(key)
    .varint(value.length)
    .raw(value)
    .varint(0)
    .toBuffer()
  const body = new Writer()
    .int16(ATTR_TRANSACTIONAL | ATTR_CONTROL)
    .int32(0)
    .int64(timestamp)
    .int64(timestamp)
    .int64(producerId)
    .int16(producerEpoch)
    .int32(-1)
    .int32(1)
    .varint(record.length)
    .raw(record)
    .toBuffer()
  const w = new Writer().int64(baseOffset).int32(body.length + 9).int32(0).int8(2).uint32(crc32c(body)).raw(body)
  return header(Buffer.from(w.toBuffer()))
}

/** Whether a control batch is a COMMIT marker (otherwise ABORT); reads the first control record's key. */
export const isCommitMarker = (batch: Batch): boolean => {
  const b = batch.bytes
  let at = HEADER
  const skipVarint = () => {
    while (b[at++]! >= 0x80);
  }
  skipVarint() // record length
  at++ // attributes
  skipVarint() // timestamp delta
  skipVarint() // offset delta
  skipVarint() // key length
  return b.readInt16BE(at + 2) === 1
}

/**
 * The offset of the first record in `batch` stamped at or after `timestamp`, or undefined if none is. Records of a
 * compressed batch are not inspected: its base offset stands for all of them.
 */
export const offsetAtOrAfter = (batch: Batch, timestamp: number): number | undefined => {
  if (batch.control || batch.maxTimestamp < timestamp) return undefined
  if ((batch.bytes.readInt16BE(21) & 0x07) !== 0) return batch.baseOffset
  const first = Number(batch.bytes.readBigInt64BE(27))
  const r = new Reader(batch.bytes)
  r.offset = HEADER
  for (let i = 0; i < batch.count; i++) {
    const length = r.varint()
    const end = r.offset + length
    r.int8()
    const ts = first + r.varint()
    const delta = r.varint()
    if (ts >= timestamp) return batch.baseOffset + delta
    r.offset = end
  }
  return undefined
}
