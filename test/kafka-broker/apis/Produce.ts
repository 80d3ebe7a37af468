/** Produce (v3+, record batch v2): epoch/transaction checks, idempotent sequence checks, offset assignment. */
import { Writer } from "../Codec.ts"
import type { Api, Context } from "../Context.ts"
import { ErrorCode } from "../Errors.ts"
import { CorruptBatch, split } from "../RecordBatch.ts"

interface PartitionResult {
  readonly index: number
  readonly error: number
  readonly baseOffset: number
}

const producePartition = (ctx: Context, topic: string, index: number, records: Buffer | null): PartitionResult => {
  const partition = ctx.store.partition(topic, index)
  if (partition === undefined) return { index, error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, baseOffset: -1 }
  let batches
  try {
    batches = split(records ?? Buffer.alloc(0))
  } catch (e) {
    if (e instanceof CorruptBatch) return { index, error: ErrorCode.CORRUPT_MESSAGE, baseOffset: -1 }
    throw e
  }
  let baseOffset = -1
  for (const batch of batches) {
    const fenced = ctx.txns.checkProduce(batch.producerId, batch.producerEpoch, batch.transactional, topic, index)
    if (fenced !== ErrorCode.NONE) return { index, error: fenced, baseOffset: -1 }
    const admission = partition.admit(batch)
    if (admission._tag === "Reject") return { index, error: admission.error, baseOffset: -1 }
    const offset =
      admission._tag === "Duplicate" ? admission.baseOffset : ctx.store.append(topic, index, batch).baseOffset
    if (baseOffset < 0) baseOffset = offset
  }
  return { index, error: ErrorCode.NONE, baseOffset }
}

const produce: Api = {
  key: 0,
  name: "Produce",
  min: 3,
  max: 7,
  handle: (ctx, { version, body }) => {
    body.nullableString()
    const acks = body.int16()
    body.int32()
    const topics = body.array((r) => {
      const name = r.string()
      return [name, r.array((r) => producePartition(ctx, name, r.int32(), r.bytes()))] as const
    })
    if (acks === 0) return null
    const w = new Writer().array(topics, (w, [name, partitions]) => {
      w.string(name).array(partitions, (w, p) => {
        w.int32(p.index).int16(p.error).int64(p.baseOffset).int64(-1)
        if (version >= 5) w.int64(0)
      })
    })
    return w.int32(0)
  }
}

/** The Produce API. */
export const produceApis: ReadonlyArray<Api> = [produce]
