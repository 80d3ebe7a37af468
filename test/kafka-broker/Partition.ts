/**
 * One partition's log: stored batches, high watermark, idempotent producer sequences and the transaction
 * bookkeeping behind the last stable offset and the aborted-transaction index used by read_committed fetches.
 */
import { type Batch, isCommitMarker, offsetAtOrAfter, rebase } from "./RecordBatch.ts"
import { ErrorCode } from "./Errors.ts"

interface ProducerState {
  readonly epoch: number
  readonly lastSeq: number
  /** First sequence and base offset of the latest batches, to acknowledge retries (Kafka keeps 5). */
  readonly recent: ReadonlyArray<readonly [firstSeq: number, baseOffset: number]>
}

const RECENT_BATCHES = 5

/** A completed aborted transaction: read_committed consumers drop its records in `[firstOffset, lastOffset]`. */
export interface AbortedTxn {
  readonly producerId: number
  readonly firstOffset: number
  readonly lastOffset: number
}

/** The outcome of the sequence check for a produced batch. */
export type Admission =
  | { readonly _tag: "Append" }
  | { readonly _tag: "Duplicate"; readonly baseOffset: number }
  | { readonly _tag: "Reject"; readonly error: number }

/** A partition's in-memory log. */
export class Partition {
  readonly batches: Array<Batch> = []
  highWatermark = 0
  private readonly producers = new Map<number, ProducerState>()
  /** Producer id -> first offset of its open transaction on this partition. */
  private readonly open = new Map<number, number>()
  private readonly aborted: Array<AbortedTxn> = []

  /** The last stable offset: no record of an open transaction at or after it is visible to read_committed. */
  get lastStableOffset(): number {
    let lso = this.highWatermark
    for (const first of this.open.values()) lso = Math.min(lso, first)
    return lso
  }

  /** Checks an idempotent/transactional batch's epoch and sequence against this partition's producer state. */
  admit(batch: Batch): Admission {
    if (batch.producerId < 0) return { _tag: "Append" }
    const state = this.producers.get(batch.producerId)
    if (state !== undefined && batch.producerEpoch < state.epoch) {
      return { _tag: "Reject", error: ErrorCode.INVALID_PRODUCER_EPOCH }
    }
    if (state === undefined || batch.producerEpoch > state.epoch) {
      return batch.baseSequence === 0 || batch.baseSequence === -1
        ? { _tag: "Append" }
        : { _tag: "Reject", error: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER }
    }
    const retried = state.recent.find(([firstSeq]) => firstSeq === batch.baseSequence)
    if (retried !== undefined) return { _tag: "Duplicate", baseOffset: retried[1] }
    if (batch.baseSequence !== state.lastSeq + 1) {
      return { _tag: "Reject", error: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER }
    }
    return { _tag: "Append" }
  }

  /** Appends `batch` at the high watermark and returns it with its assigned offsets. */
  append(input: Batch): Batch {
    const batch = rebase(input, this.highWatermark)
    this.batches.push(batch)
    this.highWatermark = batch.lastOffset + 1
    if (batch.producerId >= 0) {
      if (batch.control) this.completeTxn(batch)
      else {
        const state = this.producers.get(batch.producerId)
        const recent = state?.epoch === batch.producerEpoch ? state.recent.slice(1 - RECENT_BATCHES) : []
        this.producers.set(batch.producerId, {
          epoch: batch.producerEpoch,
          lastSeq: batch.baseSequence + batch.count - 1,
          recent: [...recent, [batch.baseSequence, batch.baseOffset]]
        })
        if (batch.transactional && !this.open.has(batch.producerId)) this.open.set(batch.producerId, batch.baseOffset)
      }
    }
    return batch
  }

  private completeTxn(marker: Batch): void {
    const first = this.open.get(marker.producerId)
    this.open.delete(marker.producerId)
    const state = this.producers.get(marker.producerId)
    // A marker written with a bumped epoch (fencing, timeout) starts the new epoch's sequences at 0.
    if (state === undefined || marker.producerEpoch > state.epoch) {
      this.producers.set(marker.producerId, { epoch: marker.producerEpoch, lastSeq: -1, recent: [] })
    }
    if (first !== undefined && !isCommitMarker(marker)) {
      this.aborted.push({ producerId: marker.producerId, firstOffset: first, lastOffset: marker.baseOffset })
    }
  }

  /** Whether `producerId` has records of an open transaction here (a marker is due at its end). */
  hasOpenTxn(producerId: number): boolean {
    return this.open.has(producerId)
  }

  /** Batches from the one holding `offset` up to `limit` (exclusive), about `maxBytes` but at least one batch. */
  read(offset: number, limit: number, maxBytes: number): Array<Batch> {
    let lo = 0
    let hi = this.batches.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.batches[mid]!.lastOffset < offset) lo = mid + 1
      else hi = mid
    }
    const out: Array<Batch> = []
    let bytes = 0
    for (let i = lo; i < this.batches.length; i++) {
      const batch = this.batches[i]!
      if (batch.baseOffset >= limit || (out.length > 0 && bytes + batch.bytes.length > maxBytes)) break
      out.push(batch)
      bytes += batch.bytes.length
    }
    return out
  }

  /** Aborted transactions overlapping `[from, to)`, for a read_committed fetch response. */
  abortedIn(from: number, to: number): Array<AbortedTxn> {
    return this.aborted.filter((t) => t.lastOffset >= from && t.firstOffset < to)
  }

  /** The first offset stamped at or after `timestamp`, else the high watermark (ListOffsets by time). */
  offsetForTime(timestamp: number): number {
    for (const batch of this.batches) {
      const offset = offsetAtOrAfter(batch, timestamp)
      if (offset !== undefined) return offset
    }
    return this.highWatermark
  }
}
