/** Fetch (v4-v11, long polling, read_committed via the last stable offset and aborted list) and ListOffsets. */
import { Writer } from "../Codec.ts"
import { type Api, type Context, throttle } from "../Context.ts"
import { ErrorCode } from "../Errors.ts"
import type { AbortedTxn } from "../Partition.ts"
import type { Batch } from "../RecordBatch.ts"

interface FetchPartition {
  readonly index: number
  readonly offset: number
  readonly maxBytes: number
}

interface PartitionData {
  readonly index: number
  readonly error: number
  readonly highWatermark: number
  readonly lastStable: number
  readonly aborted: ReadonlyArray<AbortedTxn> | null
  readonly batches: ReadonlyArray<Batch>
}

const readPartition = (ctx: Context, topic: string, p: FetchPartition, committed: boolean): PartitionData => {
  const partition = ctx.store.partition(topic, p.index)
  if (partition === undefined) {
    return { index: p.index, error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, highWatermark: -1, lastStable: -1, aborted: null, batches: [] }
  }
  const hw = partition.highWatermark
  const lso = partition.lastStableOffset
  if (p.offset > hw || p.offset < 0) {
    return { index: p.index, error: ErrorCode.OFFSET_OUT_OF_RANGE, highWatermark: hw, lastStable: lso, aborted: null, batches: [] }
  }
  const batches = partition.read(p.offset, committed ? lso : hw, p.maxBytes)
  const end = batches.length === 0 ? p.offset : batches[batches.length - 1]!.lastOffset + 1
  const aborted = committed ? partition.abortedIn(p.offset, end) : null
  return { index: p.index, error: ErrorCode.NONE, highWatermark: hw, lastStable: lso, aborted, batches }
}

const fetch: Api = {
  key: 1,
  name: "Fetch",
  min: 4,
  max: 11,
  handle: async (ctx, { version, body }) => {
    body.int32()
    const maxWait = body.int32()
    const minBytes = body.int32()
    body.int32()
    const committed = body.int8() === 1
    if (version >= 7) {
      body.int32()
      body.int32()
    }
    const topics = body.array((r) => {
      const name = r.string()
      return [
        name,
        r.array((r): FetchPartition => {
          const index = r.int32()
          if (version >= 9) r.int32()
          const offset = r.int64n()
          if (version >= 5) r.int64()
          return { index, offset, maxBytes: r.int32() }
        })
      ] as const
    })
    const deadline = Date.now() + maxWait
    let result = topics.map(([name, ps]) => [name, ps.map((p) => readPartition(ctx, name, p, committed))] as const)
    const size = () => result.reduce((n, [, ps]) => ps.reduce((n, p) => n + p.batches.length, n), 0)
    while (size() === 0 && minBytes > 0 && Date.now() < deadline) {
      await ctx.store.waitForData(Math.max(1, deadline - Date.now()))
      result = topics.map(([name, ps]) => [name, ps.map((p) => readPartition(ctx, name, p, committed))] as const)
    }
    const w = throttle(new Writer(), version, 1)
    if (version >= 7) w.int16(ErrorCode.NONE).int32(0)
    return w.array(result, (w, [name, partitions]) => {
      w.string(name).array(partitions, (w, p) => {
        w.int32(p.index).int16(p.error).int64(p.highWatermark).int64(p.lastStable)
        if (version >= 5) w.int64(0)
        if (p.aborted === null) w.int32(-1)
        else w.array(p.aborted, (w, a) => w.int64(a.producerId).int64(a.firstOffset))
        if (version >= 11) w.int32(-1)
        const at = w.placeholder()
        for (const b of p.batches) w.raw(b.bytes)
        w.patchInt32(at, w.length - at - 4)
      })
    })
  }
}

const listOffsets: Api = {
  key: 2,
  name: "ListOffsets",
  min: 1,
  max: 5,
  handle: (ctx, { version, body }) => {
    body.int32()
    const committed = version >= 2 && body.int8() === 1
    const topics = body.array((r) => {
      const name = r.string()
      return [
        name,
        r.array((r) => {
          const index = r.int32()
          if (version >= 4) r.int32()
          return [index, r.int64n()] as const
        })
      ] as const
    })
    const w = throttle(new Writer(), version, 2)
    return w.array(topics, (w, [name, partitions]) => {
      w.string(name).array(partitions, (w, [index, timestamp]) => {
        const partition = ctx.store.partition(name, index)
        const offset =
          partition === undefined
            ? -1
            : timestamp === -2
              ? 0
              : timestamp === -1
                ? committed ? partition.lastStableOffset : partition.highWatermark
                : partition.offsetForTime(timestamp)
        const error = partition === undefined ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : ErrorCode.NONE
        w.int32(index).int16(error).int64(-1).int64(offset)
        if (version >= 4) w.int32(0)
      })
    })
  }
}

/** Fetch and ListOffsets. */
export const fetchApis: ReadonlyArray<Api> = [fetch, listOffsets]
