/** The transaction APIs: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn. */
import { Writer } from "../Codec.ts"
import type { Api } from "../Context.ts"

const initProducerId: Api = {
  key: 22,
  name: "InitProducerId",
  min: 0,
  max: 1,
  handle: (ctx, { body }) => {
    const r = ctx.txns.initProducerId(body.nullableString(), body.int32())
    return new Writer().int32(0).int16(r.error).int64(r.producerId).int16(r.epoch)
  }
}

const addPartitionsToTxn: Api = {
  key: 24,
  name: "AddPartitionsToTxn",
  min: 0,
  max: 1,
  handle: (ctx, { body }) => {
    const id = body.string()
    const producerId = body.int64n()
    const epoch = body.int16()
    const topics = body.array((r) => [r.string(), r.array((r) => r.int32())] as const)
    const error = ctx.txns.addPartitions(id, producerId, epoch, topics.flatMap(([t, ps]) => ps.map((p) => [t, p] as const)))
    return new Writer().int32(0).array(topics, (w, [name, partitions]) => {
      w.string(name).array(partitions, (w, p) => w.int32(p).int16(error))
    })
  }
}

const addOffsetsToTxn: Api = {
  key: 25,
  name: "AddOffsetsToTxn",
  min: 0,
  max: 1,
  handle: (ctx, { body }) => {
    const id = body.string()
    const producerId = body.int64n()
    const epoch = body.int16()
    body.string()
    return new Writer().int32(0).int16(ctx.txns.addOffsets(id, producerId, epoch))
  }
}

const txnOffsetCommit: Api = {
  key: 28,
  name: "TxnOffsetCommit",
  min: 0,
  max: 1,
  handle: (ctx, { body }) => {
    const id = body.string()
    const group = body.string()
    const producerId = body.int64n()
    const epoch = body.int16()
    const topics = body.array((r) => {
      const name = r.string()
      return [name, r.array((r) => [r.int32(), r.int64n(), r.nullableString()] as const)] as const
    })
    const offsets = topics.flatMap(([t, ps]) => ps.map(([p, o, m]) => [group, t, p, o, m] as const))
    const error = ctx.txns.commitOffsets(id, producerId, epoch, offsets)
    return new Writer().int32(0).array(topics, (w, [name, partitions]) => {
      w.string(name).array(partitions, (w, [p]) => w.int32(p).int16(error))
    })
  }
}

const endTxn: Api = {
  key: 26,
  name: "EndTxn",
  min: 0,
  max: 1,
  handle: (ctx, { body }) => {
    const id = body.string()
    const producerId = body.int64n()
    const epoch = body.int16()
    return new Writer().int32(0).int16(ctx.txns.endTxn(id, producerId, epoch, body.bool()))
  }
}

/** The transaction coordinator's APIs. */
export const transactionApis: ReadonlyArray<Api> = [
  initProducerId,
  addPartitionsToTxn,
  addOffsetsToTxn,
  txnOffsetCommit,
  endTxn
]
