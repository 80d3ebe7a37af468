/**
 * The transaction coordinator: producer ids and epochs (a new InitProducerId for a transactional id bumps the
 * epoch, fencing the previous producer), the partitions and offsets of each open transaction, EndTxn writing
 * COMMIT/ABORT markers, and aborting transactions left open past their timeout.
 */
import { ErrorCode } from "./Errors.ts"
import type { Event } from "./Journal.ts"
import { controlBatch } from "./RecordBatch.ts"
import type { Store } from "./Store.ts"

type PendingOffset = readonly [group: string, topic: string, partition: number, offset: number, metadata: string | null]

interface Txn {
  readonly id: string
  producerId: number
  epoch: number
  timeoutMs: number
  open: boolean
  startedAt: number
  lastCommit: boolean | undefined
  readonly partitions: Map<string, readonly [string, number]>
  offsets: Array<PendingOffset>
}

/** Coordinator state for producer ids and transactions. */
export class Transactions {
  private readonly epochs = new Map<number, number>()
  private readonly txns = new Map<string, Txn>()
  private readonly byProducer = new Map<number, Txn>()
  private nextProducerId = 1000
  private readonly timer: NodeJS.Timeout
  private readonly store: Store
  private readonly maxTimeoutMs: number

  constructor(store: Store, maxTimeoutMs: number) {
    this.store = store
    this.maxTimeoutMs = maxTimeoutMs
    this.timer = setInterval(() => this.expire(Date.now()), 50)
    this.timer.unref()
  }

  /** Rebuilds coordinator state from a journaled event. */
  replay(event: Event): void {
    if (event.k === "producer") {
      this.epochs.set(event.producerId, event.epoch)
      this.nextProducerId = Math.max(this.nextProducerId, event.producerId + 1)
    } else if (event.k === "txn") {
      const txn = this.txn(event.id, event.producerId)
      txn.epoch = event.epoch
      txn.timeoutMs = event.timeoutMs
      txn.open = event.open
      txn.startedAt = Date.now()
      txn.partitions.clear()
      for (const [t, p] of event.partitions) txn.partitions.set(`${t}\u0000${p}`, [t, p])
      txn.offsets = [...event.offsets]
      this.epochs.set(event.producerId, event.epoch)
      this.nextProducerId = Math.max(this.nextProducerId, event.producerId + 1)
    }
  }

  private txn(id: string, producerId: number): Txn {
    let txn = this.txns.get(id)
    if (txn === undefined) {
      txn = {
        id,
        producerId,
        epoch: 0,
        timeoutMs: 60_000,
        open: false,
        startedAt: 0,
        lastCommit: undefined,
        partitions: new Map(),
        offsets: []
      }
      this.txns.set(id, txn)
      this.byProducer.set(producerId, txn)
    }
    return txn
  }

  private save(txn: Txn): void {
    this.store.apply({
      k: "txn",
      id: txn.id,
      producerId: txn.producerId,
      epoch: txn.epoch,
      timeoutMs: txn.timeoutMs,
      open: txn.open,
      partitions: [...txn.partitions.values()],
      offsets: txn.offsets
    })
  }

  /** InitProducerId: a fresh id for an idempotent producer; for a transactional id, abort and bump the epoch. */
  initProducerId(
    transactionalId: string | null,
    timeoutMs: number
  ): { error: number; producerId: number; epoch: number } {
    if (transactionalId === null) {
      const producerId = this.nextProducerId++
      this.epochs.set(producerId, 0)
      this.store.apply({ k: "producer", producerId, epoch: 0 })
      return { error: ErrorCode.NONE, producerId, epoch: 0 }
    }
    if (timeoutMs <= 0) return { error: ErrorCode.INVALID_TRANSACTION_TIMEOUT, producerId: -1, epoch: -1 }
    const known = this.txns.get(transactionalId)
    const txn = known ?? this.txn(transactionalId, this.nextProducerId++)
    if (known !== undefined) txn.epoch++
    txn.timeoutMs = Math.min(timeoutMs, this.maxTimeoutMs)
    this.epochs.set(txn.producerId, txn.epoch)
    if (txn.open) this.complete(txn, false)
    else this.save(txn)
    return { error: ErrorCode.NONE, producerId: txn.producerId, epoch: txn.epoch }
  }

  private check(transactionalId: string, producerId: number, epoch: number): Txn | number {
    const txn = this.txns.get(transactionalId)
    if (txn === undefined || txn.producerId !== producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING
    if (epoch !== txn.epoch) return ErrorCode.INVALID_PRODUCER_EPOCH
    return txn
  }

  private begin(txn: Txn): void {
    if (!txn.open) {
      txn.open = true
      txn.startedAt = Date.now()
    }
  }

  /** AddPartitionsToTxn: an error code for the whole request (every partition gets it). */
  addPartitions(
    transactionalId: string,
    producerId: number,
    epoch: number,
    partitions: ReadonlyArray<readonly [string, number]>
  ): number {
    const txn = this.check(transactionalId, producerId, epoch)
    if (typeof txn === "number") return txn
    for (const [t, p] of partitions) {
      if (this.store.partition(t, p) === undefined) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    }
    this.begin(txn)
    for (const [t, p] of partitions) txn.partitions.set(`${t}\u0000${p}`, [t, p])
    this.save(txn)
    return ErrorCode.NONE
  }

  /** AddOffsetsToTxn: the group's offsets will be committed with the transaction. */
  addOffsets(transactionalId: string, producerId: number, epoch: number): number {
    const txn = this.check(transactionalId, producerId, epoch)
    if (typeof txn === "number") return txn
    this.begin(txn)
    this.save(txn)
    return ErrorCode.NONE
  }

  /** TxnOffsetCommit: stages offsets that become committed only if the transaction commits. */
  commitOffsets(transactionalId: string, producerId: number, epoch: number, offsets: Array<PendingOffset>): number {
    const txn = this.check(transactionalId, producerId, epoch)
    if (typeof txn === "number") return txn
    if (!txn.open) return ErrorCode.INVALID_TXN_STATE
    txn.offsets.push(...offsets)
    this.save(txn)
    return ErrorCode.NONE
  }

  /** EndTxn: writes the markers (and, on commit, the staged offsets). A retried EndTxn succeeds. */
  endTxn(transactionalId: string, producerId: number, epoch: number, commit: boolean): number {
    const txn = this.check(transactionalId, producerId, epoch)
    if (typeof txn === "number") return txn
    if (!txn.open) return txn.lastCommit === commit ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE
    this.complete(txn, commit)
    return ErrorCode.NONE
  }

  /** The error for a produced batch from `producerId` at `epoch` to a partition, or NONE. */
  checkProduce(producerId: number, epoch: number, transactional: boolean, topic: string, partition: number): number {
    if (producerId < 0) return ErrorCode.NONE
    const current = this.epochs.get(producerId)
    if (current !== undefined && epoch < current) return ErrorCode.INVALID_PRODUCER_EPOCH
    if (!transactional) return ErrorCode.NONE
    const txn = this.byProducer.get(producerId)
    if (txn === undefined || !txn.open || !txn.partitions.has(`${topic}\u0000${partition}`)) {
      return ErrorCode.INVALID_TXN_STATE
    }
    return ErrorCode.NONE
  }

  private complete(txn: Txn, commit: boolean): void {
    const now = Date.now()
    for (const [t, p] of txn.partitions.values()) {
      if (this.store.partition(t, p) === undefined) continue
      this.store.append(t, p, controlBatch(0, txn.producerId, txn.epoch, commit, now))
    }
    if (commit) {
      for (const [group, topic, partition, offset, metadata] of txn.offsets) {
        this.store.apply({ k: "offset", group, topic, partition, offset, metadata })
      }
    }
    txn.open = false
    txn.lastCommit = commit
    txn.partitions.clear()
    txn.offsets = []
    this.save(txn)
  }

  /** Aborts transactions open longer than their timeout, bumping the epoch so their producer is fenced. */
  expire(now: number): void {
    for (const txn of this.txns.values()) {
      if (!txn.open || now - txn.startedAt < txn.timeoutMs) continue
      txn.epoch++
      this.epochs.set(txn.producerId, txn.epoch)
      this.complete(txn, false)
    }
  }

  /** The transactional ids with an open transaction. */
  openIds(): Array<string> {
    return [...this.txns.values()].filter((t) => t.open).map((t) => t.id)
  }

  close(): void {
    clearInterval(this.timer)
  }
}
