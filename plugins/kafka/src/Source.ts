/**
 * The Kafka source: the partitions of its topics are the splits of the kit's
 * `Splits.make`, dealt over the instances and discovered while running; each
 * is read with raw fetches at its own offset, so a snapshot keeps the next
 * offset of every partition and a restore (with any number of instances)
 * resumes each partition exactly there.
 */
import { Data, Duration, Effect } from "effect"
import { Splits } from "@tributary/core"
import type { Source } from "@tributary/core"
import { KafkaClient, type KafkaClientShape } from "./Client.ts"
import * as Internals from "./Internals.ts"
import * as Serde from "./Serde.ts"

/** One record read from Kafka. */
export interface KafkaRecord<V> {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  /** The record's timestamp (ms): its event time. */
  readonly timestamp: number
  readonly key: Buffer | null
  /** `null`: a tombstone. */
  readonly value: V | null
  readonly headers: Readonly<Record<string, Buffer | string | ReadonlyArray<Buffer | string> | undefined>>
}

/** A topic of the source does not exist (and `create` was not asked). */
export class KafkaTopicNotFound extends Data.TaggedError("KafkaTopicNotFound")<{
  readonly topic: string
  readonly brokers: string
}> {
  override get message() {
    return `Kafka ${this.brokers}: topic "${this.topic}" does not exist (create it, or pass create: { partitions })`
  }
}

/** A record's value could not be decoded. */
export class KafkaDecodeError extends Data.TaggedError("KafkaDecodeError")<{
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly cause: unknown
}> {
  override get message() {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `Kafka record ${this.topic}/${this.partition}@${this.offset} (topic/partition@offset): cannot decode its value: ${reason}`
  }
}

/** Where a partition without a saved position starts. */
export type StartFrom = "earliest" | "latest" | { readonly timestamp: number } | { readonly committed: "earliest" | "latest" }

export interface KafkaSourceOptions<V> {
  readonly name?: string | undefined
  /** The topics read: a list, or a pattern matched against every topic's name (rediscovered with `discoverEvery`). */
  readonly topics: ReadonlyArray<string> | RegExp
  /** Decodes values (default: the bytes). */
  readonly value?: Serde.Deserializer<V> | undefined
  /** Where a partition starts on a fresh run (default `earliest`); a partition discovered while running starts at its earliest. */
  readonly from?: StartFrom | undefined
  /** The group whose committed offsets `from: { committed }` starts at. */
  readonly groupId?: string | undefined
  /**
   * After each completed snapshot, commit the offsets it saved to this consumer group, so lag tools
   * (`kafka-consumer-groups`, Burrow) see the job's progress. Only for them: the positions the job
   * resumes from stay in the snapshot; the group never joins, so it must not be a running group's.
   */
  readonly group?: string | undefined
  /** `read_committed`: only records of committed transactions (default `read_uncommitted`). */
  readonly isolation?: "read_committed" | "read_uncommitted" | undefined
  /** Read up to the end offsets found at start, then end (a bounded source). */
  readonly bounded?: boolean | undefined
  /** List the topics' partitions again at this interval: new partitions (and matching topics) are read from their earliest. */
  readonly discoverEvery?: Duration.Input | undefined
  /** Creates a missing topic with that many partitions, instead of failing with `KafkaTopicNotFound`. */
  readonly create?: { readonly partitions: number } | undefined
  /** Most bytes per partition fetch (default 1 MiB). */
  readonly maxBytes?: number | undefined
}

interface PartitionSplit extends Splits.Split {
  readonly topic: string
  readonly partition: number
  /** Found by a discovery while running: read from the earliest offset. */
  readonly discovered: boolean
}

const READ_COMMITTED = 1

const topicsOf = (client: KafkaClientShape, options: KafkaSourceOptions<unknown>) =>
  Effect.gen(function*() {
    const existing = new Set(yield* client.call("list topics", () => client.admin.listTopics()))
    const { topics } = options
    if (topics instanceof RegExp) return [...existing].filter((t) => topics.test(t)).sort()
    const missing = topics.filter((t) => !existing.has(t))
    if (missing.length > 0) {
      if (!options.create) return yield* new KafkaTopicNotFound({ topic: missing[0]!, brokers: client.brokers })
      const { partitions } = options.create
      yield* client.call("create topics", () => client.admin.createTopics({ waitForLeaders: true, topics: missing.map((topic) => ({ topic, numPartitions: partitions })) }))
    }
    return [...topics].sort()
  })

/** The next offset of each partition of `topic` where a fresh run starts. */
const startOffsets = (client: KafkaClientShape, topic: string, from: StartFrom, groupId: string | undefined) =>
  Effect.gen(function*() {
    const offsets = yield* client.call(`offsets of ${topic}`, () => client.admin.fetchTopicOffsets(topic))
    const at = new Map<number, number>()
    for (const o of offsets) at.set(o.partition, Number(from === "latest" ? o.high : o.low))
    if (typeof from === "object" && "timestamp" in from) {
      for (const o of yield* client.call(`offsets of ${topic} at ${from.timestamp}`, () => client.admin.fetchTopicOffsetsByTimestamp(topic, from.timestamp))) {
        at.set(o.partition, Number(o.offset))
      }
    } else if (typeof from === "object") {
      if (groupId === undefined) return yield* Effect.die(new Error("Kafka source: from: { committed } needs a groupId"))
      const [committed] = yield* client.call(`offsets of group ${groupId}`, () => client.admin.fetchOffsets({ groupId, topics: [topic] }))
      for (const p of committed?.partitions ?? []) {
        if (Number(p.offset) >= 0) at.set(p.partition, Number(p.offset))
        else if (from.committed === "latest") at.set(p.partition, Number(offsets.find((o) => o.partition === p.partition)!.high))
      }
    }
    return at
  })

/** Commits the next offsets of the partitions a snapshot saved (those started) to consumer group `group`. */
const commitTo = (group: string) => (positions: ReadonlyMap<string, unknown>) =>
  Effect.gen(function*() {
    const offsets = new Map<string, Array<{ partition: number; offset: string }>>()
    for (const [id, position] of positions) {
      if (typeof position !== "number") continue
      // A split id is `topic/partition`; a topic name has no `/`.
      const at = id.lastIndexOf("/")
      const topic = id.slice(0, at)
      let partitions = offsets.get(topic)
      if (!partitions) offsets.set(topic, partitions = [])
      partitions.push({ partition: Number(id.slice(at + 1)), offset: String(position) })
    }
    if (offsets.size === 0) return
    const client = yield* KafkaClient
    // Only lag tools read these offsets and the next snapshot commits newer ones: a failure is logged, not the job's.
    yield* client.call(`commit offsets of group ${group}`, () => Internals.commitOffsets(client.cluster, group, offsets)).pipe(
      Effect.catch((e) => Effect.logWarning(e.message, e.cause))
    )
  })

/**
 * Reads the records of `topics`, each partition a split of its own with the
 * next offset as position: exactly-once with a replaying snapshot, restorable
 * with any number of instances. A record's event time is its timestamp, and
 * each partition keeps its own watermark (an idle one does not hold the others
 * back). Fails at start with `KafkaTopicNotFound` for a missing topic, and on
 * a value `value` cannot decode with `KafkaDecodeError` naming the record.
 */
export const source = <V = Buffer>(options: KafkaSourceOptions<V>): Source.Source<KafkaRecord<V>, KafkaClient> => {
  const value = (options.value ?? Serde.bytes) as Serde.Deserializer<V>
  const from = options.from ?? "earliest"
  const isolationLevel = options.isolation === "read_committed" ? READ_COMMITTED : 0
  const maxBytes = options.maxBytes ?? 1024 * 1024
  const bounded = options.bounded ?? false
  const discoverEvery = options.discoverEvery === undefined ? undefined : Duration.toMillis(options.discoverEvery)
  // Start offsets found once per process and topic: every partition of a fresh run starts from the same instant.
  const starts = new Map<string, Map<number, number>>()
  return Splits.make<KafkaRecord<V>, PartitionSplit, KafkaClient>({
    name: options.name ?? "kafka",
    bounded,
    discoverEvery,
    eventTime: (r) => r.timestamp,
    commit: options.group === undefined ? undefined : commitTo(options.group),
    enumerate: ({ initial }) =>
      Effect.gen(function*() {
        const client = yield* KafkaClient
        const topics = yield* topicsOf(client, options)
        const splits: Array<PartitionSplit> = []
        for (const topic of topics) {
          const metadata = yield* client.call(`metadata of ${topic}`, () => client.admin.fetchTopicMetadata({ topics: [topic] }))
          const partitions = metadata.topics[0]!.partitions.map((p) => p.partitionId).sort((a, b) => a - b)
          for (const partition of partitions) splits.push({ id: `${topic}/${partition}`, topic, partition, discovered: !initial })
        }
        return splits
      }),
    open: (split, position, batchSize) =>
      Effect.gen(function*() {
        const client = yield* KafkaClient
        const { topic, partition } = split
        const startOf = Effect.gen(function*() {
          if (split.discovered) return 0
          let at = starts.get(topic)
          if (!at) starts.set(topic, at = yield* startOffsets(client, topic, from, options.groupId))
          return at.get(partition) ?? 0
        })
        let next = typeof position === "number" ? position : yield* startOf
        // A bounded source ends at the end offset found when the partition is opened.
        const end = bounded
          ? Number((yield* client.call(`offsets of ${topic}`, () => client.admin.fetchTopicOffsets(topic))).find((o) => o.partition === partition)!.high)
          : Infinity
        yield* client.call(`metadata of ${topic}`, () => client.cluster.addTargetTopic(topic))
        // The partition's leader; a reading failure makes the kit open the split again, so it is looked up again.
        const broker = yield* client.call(`leader of ${split.id}`, async () => {
          const leaderOf = () => Object.keys(client.cluster.findLeaderForPartitions(topic, [partition]))[0]
          // A partition added since the metadata was fetched is not in it yet.
          if (leaderOf() === undefined) await client.cluster.refreshMetadata()
          const nodeId = leaderOf()
          if (nodeId === undefined) throw new Error(`no leader for ${split.id}`)
          return client.cluster.findBroker({ nodeId })
        })
        const toRecord = (m: Internals.RawMessage): KafkaRecord<V> => {
          const offset = Number(m.offset)
          let v: V | null = null
          if (m.value !== null) {
            try {
              v = value(m.value)
            } catch (cause) {
              throw new KafkaDecodeError({ topic, partition, offset, cause })
            }
          }
          return { topic, partition, offset, timestamp: Number(m.timestamp), key: m.key, value: v, headers: m.headers }
        }
        // The visible records of the last fetch not handed out yet, and the offset after that fetch.
        let fetched: Array<Internals.RawMessage> = []
        let taken = 0
        let fetchedNext = next
        const reader: Splits.SplitReader<KafkaRecord<V>> = {
          position: () => next,
          pull: Effect.gen(function*() {
            if (fetched.length === 0) {
              if (next >= end) return undefined
              const response = yield* client.call(`fetch ${split.id}@${next}`, () =>
                broker.fetch({ isolationLevel, maxWaitTime: 0, maxBytes, topics: [{ topic, partitions: [{ partition, fetchOffset: String(next), maxBytes }] }] })
              )
              const data = response.responses[0]?.partitions[0]
              if (!data) return []
              const { messages, next: after } = Internals.visible(next, data)
              if (after === undefined) return []
              fetched = messages
              taken = 0
              fetchedNext = after
            }
            // A fetch holds many batches: they are handed out in turn, the offset advancing with them.
            const slice = fetched.slice(taken, taken + batchSize)
            const batch = yield* Effect.try({ try: () => slice.map(toRecord), catch: (e) => e })
            taken += slice.length
            if (taken >= fetched.length) {
              fetched = []
              next = fetchedNext
            } else {
              next = batch[batch.length - 1]!.offset + 1
            }
            return batch
          })
        }
        return reader
      })
  })
}
