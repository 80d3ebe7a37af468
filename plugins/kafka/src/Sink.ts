/**
 * The Kafka sinks. At-least-once: an idempotent producer with `acks: all`,
 * each batch sent and acknowledged before the next. Exactly-once: the kit's
 * `Transactional.make` over Kafka transactions — a pool of transactional ids
 * per instance (two in turn, as Jet, a third when both await their commit),
 * so the transaction of the next snapshot is open while the previous one
 * waits for its commit. A prepared
 * transaction's producer id and epoch are kept in a compacted state topic, so
 * a restart commits the one the restored snapshot covers with a bare `EndTxn`
 * (a new producer of that id would abort it) and aborts the others.
 */
import { Data, Duration, Effect, type Scope } from "effect"
import { Sink, Transactional, Unrecoverable } from "@tributary/core"
import type { Message } from "kafkajs"
import { KafkaClient, type KafkaClientShape } from "./Client.ts"
import * as Internals from "./Internals.ts"

export interface KafkaSinkOptions<A> {
  readonly name?: string | undefined
  readonly topic: string
  /** A record as a Kafka message: `value`, and `key` (partitioned by the Java client's murmur2), `headers`, `partition`, `timestamp`. */
  readonly message: (a: A) => Message
  /** Default `at-least-once`. */
  readonly guarantee?: "at-least-once" | "exactly-once" | undefined
  /**
   * Exactly-once: the transaction timeout asked of the broker (default 15 minutes; at most the broker's
   * `transaction.max.timeout.ms`). A transaction stays open for a snapshot interval and, prepared, until the
   * snapshot completes or a restart commits it: the sink fails at open with `KafkaTransactionTimeoutTooShort`
   * unless it exceeds `snapshotInterval` plus a restart margin of one minute.
   */
  readonly transactionTimeout?: Duration.Input | undefined
  /**
   * Exactly-once: the job's `snapshotInterval`, for the check of `transactionTimeout` (a sink is not told
   * it; default the job's default, 10 seconds). Give it when the job snapshots less often.
   */
  readonly snapshotInterval?: Duration.Input | undefined
  /** Exactly-once: the compacted topic holding the prepared transactions (default `__tributary_transactions`). */
  readonly stateTopic?: string | undefined
}

const ACKS_ALL = -1

/** What a restart may take, from the crash to the restored sink committing: beyond the snapshot interval. */
const RESTART_MARGIN_MS = 60_000

/** The exactly-once sink's `transactionTimeout` does not exceed the snapshot interval plus the restart margin. */
export class KafkaTransactionTimeoutTooShort extends Data.TaggedError("KafkaTransactionTimeoutTooShort")<{
  readonly sink: string
  readonly transactionTimeout: number
  readonly snapshotInterval: number
  readonly restartMargin: number
}> {
  /** A setting: the job fails with it at once rather than restart into it again. */
  readonly [Unrecoverable] = true
  override get message() {
    return `Kafka sink "${this.sink}": transactionTimeout ${this.transactionTimeout} ms must exceed the snapshot interval ` +
      `${this.snapshotInterval} ms plus a restart margin of ${this.restartMargin} ms, or the broker aborts prepared transactions`
  }
}

/** The state of one transactional id, as kept in the state topic under the id. */
interface TxState {
  readonly instance: number
  readonly snapshot: number
  readonly producerId: number
  readonly producerEpoch: number
  readonly state: "prepared" | "done"
  /** Nothing was written in it: the coordinator has no transaction to end. */
  readonly empty: boolean
}

const batchOf = <A>(topic: string, message: (a: A) => Message, batch: ReadonlyArray<A>) => [{ topic, messages: batch.map(message) }]

const atLeastOnce = <A>(name: string, options: KafkaSinkOptions<A>) =>
  Sink.make<A, KafkaClient | Scope.Scope>({
    name,
    open: () =>
      Effect.gen(function*() {
        const client = yield* KafkaClient
        const producer = client.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
        yield* Effect.acquireRelease(client.call("connect producer", () => producer.connect()), () => Effect.promise(() => producer.disconnect()))
        const writer: Sink.SinkWriter<A> = {
          write: (batch) =>
            batch.length === 0 ? Effect.void : Effect.asVoid(client.call(`produce to ${options.topic}`, () =>
              producer.sendBatch({ topicMessages: batchOf(options.topic, options.message, batch), acks: ACKS_ALL })))
        }
        return writer
      })
  })

/** Reads the whole state topic: the latest state of every transactional id of `prefix`. */
const readStates = (client: KafkaClientShape, stateTopic: string, prefix: string) =>
  Effect.gen(function*() {
    const [offsets] = yield* client.call(`offsets of ${stateTopic}`, () => client.admin.fetchTopicOffsets(stateTopic))
    const end = Number(offsets!.high)
    const states = new Map<string, TxState>()
    yield* client.call(`metadata of ${stateTopic}`, () => client.cluster.addTargetTopic(stateTopic))
    const nodeId = Object.keys(client.cluster.findLeaderForPartitions(stateTopic, [0]))[0]!
    const broker = yield* client.call(`leader of ${stateTopic}`, () => client.cluster.findBroker({ nodeId }))
    for (let next = Number(offsets!.low); next < end;) {
      const fetchOffset = String(next)
      const response = yield* client.call(`fetch ${stateTopic}`, () =>
        broker.fetch({ isolationLevel: 0, maxWaitTime: 100, topics: [{ topic: stateTopic, partitions: [{ partition: 0, fetchOffset, maxBytes: 1 << 20 }] }] }))
      const { messages, next: after } = Internals.visible(next, response.responses[0]!.partitions[0]!)
      for (const m of messages) {
        const key = m.key!.toString()
        if (key.startsWith(prefix)) states.set(key, JSON.parse(m.value!.toString()))
      }
      next = after ?? end
    }
    return states
  })

/** An open transaction: the slot of its transactional id, and whether anything was written in it. */
interface Tx {
  readonly slot: number
  written: boolean
}

/** One transactional id of an instance: its producer, the snapshot it is prepared as, whether a transaction is open on it. */
interface Slot extends ReturnType<typeof Internals.transactionalProducer> {
  prepared: number | undefined
  busy: boolean
}

const exactlyOnce = <A>(name: string, options: KafkaSinkOptions<A>) =>
  Transactional.make<A, Tx, KafkaClient | Scope.Scope>({
    name,
    open: ({ instance, instances, job = "" }) =>
      Effect.gen(function*() {
        const transactionTimeout = Duration.toMillis(options.transactionTimeout ?? "15 minutes")
        const snapshotInterval = Duration.toMillis(options.snapshotInterval ?? "10 seconds")
        if (transactionTimeout <= snapshotInterval + RESTART_MARGIN_MS) {
          return yield* new KafkaTransactionTimeoutTooShort({ sink: name, transactionTimeout, snapshotInterval, restartMargin: RESTART_MARGIN_MS })
        }
        const client = yield* KafkaClient
        const stateTopic = options.stateTopic ?? "__tributary_transactions"
        const prefix = `${encodeURIComponent(job)}/${encodeURIComponent(name)}/`
        const idOf = (n: number, slot: number) => `${prefix}${n}/${slot}`
        const topics = yield* client.call("list topics", () => client.admin.listTopics())
        if (!topics.includes(stateTopic)) {
          yield* client.call(`create ${stateTopic}`, () =>
            client.admin.createTopics({ waitForLeaders: true, topics: [{ topic: stateTopic, numPartitions: 1, configEntries: [{ name: "cleanup.policy", value: "compact" }] }] }))
        }
        const states = new Map<string, TxState>()
        const save = (transactionalId: string, state: TxState) =>
          Effect.andThen(
            client.call(`save ${transactionalId} to ${stateTopic}`, () =>
              client.producer.send({ topic: stateTopic, acks: ACKS_ALL, messages: [{ key: transactionalId, value: JSON.stringify(state), partition: 0 }] })),
            Effect.sync(() => void states.set(transactionalId, state))
          )
        // The producers of this instance's transactional ids, created at the first transaction: their
        // `InitProducerId` aborts what an earlier process left open on the id and fences that process off.
        // Usually two take turns (as Jet); a third is added when both wait for their commit.
        const slots: Array<Slot> = []
        const slotOf = (transactionalId: string) => Number(transactionalId.slice(transactionalId.lastIndexOf("/") + 1))
        const addSlot = Effect.gen(function*() {
          const transactionalId = idOf(instance, slots.length)
          const slot: Slot = { ...Internals.transactionalProducer(client.kafka, client.cluster, transactionalId, transactionTimeout), prepared: undefined, busy: false }
          yield* client.call(`init ${transactionalId}`, () => slot.eos.initProducerId())
          // An id is recorded before its first use, so a later execution knows to fence it (this
          // instance's, or another's after a rescale): a transaction left open on it would hold
          // back read_committed readers until it timed out.
          if (!states.has(transactionalId)) {
            yield* save(transactionalId, { instance, snapshot: -1, producerId: slot.eos.getProducerId(), producerEpoch: slot.eos.getProducerEpoch(), state: "done", empty: true })
          }
          slots.push(slot)
        })
        /** Ends prepared transaction `id`, by its own producer if this process prepared it, else by a bare EndTxn. */
        const end = (id: Transactional.TransactionId, commit: boolean) =>
          Effect.gen(function*() {
            const found = [...states.entries()].find(([, s]) => s.instance === id.instance && s.snapshot === id.snapshot && s.state === "prepared")
            if (!found) return
            const [transactionalId, state] = found
            const own = id.instance === instance ? slots[slotOf(transactionalId)] : undefined
            if (own && own.prepared === id.snapshot) {
              yield* client.call(`end ${transactionalId}`, () => commit ? own.eos.commit() : own.eos.abort())
            } else if (!state.empty) {
              yield* client.call(`end ${transactionalId}`, () =>
                Internals.endTransaction(client.cluster, { transactionalId, producerId: state.producerId, producerEpoch: state.producerEpoch, commit }))
            }
            yield* save(transactionalId, { ...state, state: "done" })
            if (own && own.prepared === id.snapshot) {
              own.prepared = undefined
              own.busy = false
            }
          })
        const connection: Transactional.Connection<A, Tx> = {
          begin: Effect.gen(function*() {
            if (slots.length === 0) {
              // Every id this instance used before, so none keeps an open transaction.
              let used = 2
              for (const [k, v] of states) if (v.instance === instance) used = Math.max(used, slotOf(k) + 1)
              while (slots.length < used) yield* addSlot
            }
            let slot = slots.findIndex((s) => !s.busy)
            if (slot === -1) {
              slot = slots.length
              yield* addSlot
            }
            slots[slot]!.busy = true
            slots[slot]!.eos.beginTransaction()
            return { slot, written: false }
          }),
          write: (tx, batch) =>
            client.call(`produce to ${options.topic}`, async () => {
              tx.written = true
              await slots[tx.slot]!.producer.sendBatch({ topicMessages: batchOf(options.topic, options.message, batch), acks: ACKS_ALL })
            }),
          prepare: (tx, id) => {
            const { eos } = slots[tx.slot]!
            slots[tx.slot]!.prepared = id.snapshot
            return save(idOf(instance, tx.slot), {
              instance,
              snapshot: id.snapshot,
              producerId: eos.getProducerId(),
              producerEpoch: eos.getProducerEpoch(),
              state: "prepared",
              empty: !tx.written
            })
          },
          commit: (id) => end(id, true),
          abort: (id) => end(id, false),
          recover: Effect.gen(function*() {
            for (const [k, v] of yield* readStates(client, stateTopic, prefix)) states.set(k, v)
            // The ids of instances gone after a rescale that this one answers for: `InitProducerId`
            // aborts what one left open and fences it off, should it still run. A prepared one is
            // left to be committed or aborted by its saved producer id and epoch.
            const answersFor = Transactional.owns(instance, instances)
            for (const [transactionalId, state] of states) {
              if (state.instance >= instances && answersFor(state.instance) && state.state !== "prepared") {
                const { eos } = Internals.transactionalProducer(client.kafka, client.cluster, transactionalId, transactionTimeout)
                yield* client.call(`fence ${transactionalId}`, () => eos.initProducerId())
              }
            }
            return [...states.values()].filter((s) => s.state === "prepared").map((s) => ({ job, sink: name, instance: s.instance, snapshot: s.snapshot }))
          })
        }
        return connection
      })
  })

/**
 * Writes records to `topic`, keyed ones to the partition the Java client's
 * murmur2 picks. At-least-once by default; `exactly-once` makes each record
 * visible to `read_committed` consumers once, after the snapshot that covers it.
 *
 * Exactly-once fails at open with `KafkaTransactionTimeoutTooShort` when
 * `transactionTimeout` does not exceed `snapshotInterval` plus a minute.
 */
export const sink = <A>(options: KafkaSinkOptions<A>): Sink.Sink<A, KafkaClient> => {
  const name = options.name ?? `kafka:${options.topic}`
  return options.guarantee === "exactly-once" ? exactlyOnce(name, options) : atLeastOnce(name, options)
}
