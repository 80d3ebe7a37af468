/**
 * The parts of kafkajs below its public API that the connectors need: a bare
 * cluster (metadata, leaders, coordinators, raw `fetch` / `listOffsets` /
 * `endTxn` / `offsetCommit` per broker) and the transactional state machine with its producer
 * id and epoch. kafkajs
 * keeps them internal; they are stable since 2.0 (pinned by the lock file).
 */
import { createRequire } from "node:module"
import type { Kafka, Message } from "kafkajs"

const require = createRequire(import.meta.url)

/** A record as kafkajs's fetch decodes it. */
export interface RawMessage {
  readonly offset: string
  readonly timestamp: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Record<string, Buffer | string | ReadonlyArray<Buffer | string> | undefined>
  readonly isControlRecord?: boolean
  readonly batchContext: { readonly producerId: string; readonly inTransaction: boolean }
}

export interface FetchPartition {
  readonly partition: number
  readonly errorCode: number
  readonly highWatermark: string
  readonly abortedTransactions: ReadonlyArray<{ readonly producerId: string; readonly firstOffset: string }> | null
  readonly messages: ReadonlyArray<RawMessage>
}

export interface RawBroker {
  fetch(request: {
    isolationLevel: number
    maxWaitTime: number
    minBytes?: number
    maxBytes?: number
    topics: ReadonlyArray<{ topic: string; partitions: ReadonlyArray<{ partition: number; fetchOffset: string; maxBytes: number }> }>
  }): Promise<{ responses: ReadonlyArray<{ topicName: string; partitions: ReadonlyArray<FetchPartition> }> }>
  endTxn(request: { transactionalId: string; producerId: number; producerEpoch: number; transactionResult: boolean }): Promise<unknown>
  offsetCommit(request: {
    groupId: string
    groupGenerationId: number
    memberId: string
    topics: ReadonlyArray<{ topic: string; partitions: ReadonlyArray<{ partition: number; offset: string }> }>
  }): Promise<unknown>
}

export interface Cluster {
  connect(): Promise<void>
  disconnect(): Promise<void>
  addTargetTopic(topic: string): Promise<void>
  refreshMetadata(): Promise<void>
  findLeaderForPartitions(topic: string, partitions: ReadonlyArray<number>): Record<string, ReadonlyArray<number>>
  findBroker(request: { nodeId: string }): Promise<RawBroker>
  findGroupCoordinator(request: { groupId: string; coordinatorType: number }): Promise<RawBroker>
}

/** The transactional (or idempotent) state of one producer id. */
export interface EosManager {
  initProducerId(): Promise<void>
  beginTransaction(): void
  commit(): Promise<void>
  abort(): Promise<void>
  getProducerId(): number
  getProducerEpoch(): number
  isInTransaction(): boolean
}

export interface TopicMessages {
  readonly topic: string
  readonly messages: ReadonlyArray<Message>
}

export interface MessageProducer {
  sendBatch(request: { topicMessages: ReadonlyArray<TopicMessages>; acks: number; timeout?: number }): Promise<unknown>
}

const COORDINATOR_GROUP = 0
const COORDINATOR_TRANSACTION = 1

/**
 * Commits `offsets` (next offset by topic and partition) for `groupId` as a client outside the group
 * (generation -1, no member), as the Java `commitSync` of an unassigned consumer: no join, no rebalance.
 */
export const commitOffsets = async (c: Cluster, groupId: string, offsets: ReadonlyMap<string, ReadonlyArray<{ partition: number; offset: string }>>): Promise<void> => {
  const coordinator = await c.findGroupCoordinator({ groupId, coordinatorType: COORDINATOR_GROUP })
  await coordinator.offsetCommit({ groupId, groupGenerationId: -1, memberId: "", topics: [...offsets].map(([topic, partitions]) => ({ topic, partitions })) })
}

const createClusterSymbol = (kafka: Kafka): symbol => {
  const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === "private:Kafka:createCluster")
  if (!symbol) throw new Error("kafkajs: this version does not expose its cluster (private:Kafka:createCluster)")
  return symbol
}

/** A cluster of `kafka`'s brokers, with its logger and retry settings. */
export const cluster = (kafka: Kafka, options: { readonly isolationLevel?: number }): Cluster =>
  (kafka as any)[createClusterSymbol(kafka)]({ allowAutoTopicCreation: false, ...options })

const createEosManager = require("kafkajs/src/producer/eosManager/index.js")
const createMessageProducer = require("kafkajs/src/producer/messageProducer.js")
const createRetry = require("kafkajs/src/retry/index.js")
const { DefaultPartitioner } = require("kafkajs/src/producer/partitioners/index.js")
const { CONNECTION_STATUS } = require("kafkajs/src/network/connectionStatus.js")
const murmur2Js = require("kafkajs/src/producer/partitioners/default/murmur2.js")

/** The Java client's murmur2 of a key (the hash its default partitioner and kafkajs's take). */
export const murmur2 = (key: Buffer | string): number => murmur2Js(key)

/** A transactional producer of `transactionalId` whose producer id and epoch can be read. */
export const transactionalProducer = (kafka: Kafka, c: Cluster, transactionalId: string, transactionTimeout: number) => {
  const logger = kafka.logger()
  const eos: EosManager = createEosManager({ logger, cluster: c, transactionTimeout, transactional: true, transactionalId })
  const producer: MessageProducer = createMessageProducer({
    logger,
    cluster: c,
    partitioner: DefaultPartitioner(),
    eosManager: eos,
    idempotent: true,
    retrier: createRetry({ retries: 5 }),
    getConnectionStatus: () => CONNECTION_STATUS.CONNECTED
  })
  return { eos, producer }
}

/** Sends `EndTxn` for a transaction prepared by an earlier process, from its saved producer id and epoch. */
export const endTransaction = async (
  c: Cluster,
  request: { transactionalId: string; producerId: number; producerEpoch: number; commit: boolean }
): Promise<void> => {
  const coordinator = await c.findGroupCoordinator({ groupId: request.transactionalId, coordinatorType: COORDINATOR_TRANSACTION })
  await coordinator.endTxn({
    transactionalId: request.transactionalId,
    producerId: request.producerId,
    producerEpoch: request.producerEpoch,
    transactionResult: request.commit
  })
}

const ABORT_MARKER = Buffer.from([0, 0, 0, 0])

/**
 * The records of a fetched partition a consumer may see (no aborted or control record), and the next offset.
 * Not kafkajs's filter: it activates one aborted transaction per record, in the order the broker lists them
 * (by abort marker), so with transactions of several producers interleaved (the instances of a sink) records
 * of an aborted one leak. As the Java consumer, the aborted transactions are taken by first offset.
 */
export const visible = (fetchOffset: number, partition: FetchPartition): { messages: Array<RawMessage>; next: number | undefined } => {
  const aborted = [...partition.abortedTransactions ?? []].sort((a, b) => Number(a.firstOffset) - Number(b.firstOffset))
  const active = new Set<string>()
  const messages: Array<RawMessage> = []
  let at = 0
  let next: number | undefined
  for (const m of partition.messages) {
    const offset = Number(m.offset)
    // A compressed batch starts before the offset asked for.
    if (offset < fetchOffset) continue
    next = offset + 1
    while (at < aborted.length && Number(aborted[at]!.firstOffset) <= offset) active.add(String(aborted[at++]!.producerId))
    const { producerId, inTransaction } = m.batchContext
    if (m.isControlRecord) {
      if (m.key !== null && ABORT_MARKER.equals(m.key)) active.delete(String(producerId))
    } else if (!(inTransaction && active.has(String(producerId)))) {
      messages.push(m)
    }
  }
  return { messages, next }
}
