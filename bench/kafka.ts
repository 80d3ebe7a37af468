/**
 * The Kafka plugin side by side with bare kafkajs on the same broker (the
 * test broker in a process of its own, or KAFKA_BROKERS), each variant of a
 * group run in turn over three rounds, the best kept: consuming 200k records of 100
 * bytes from 4 partitions through the source vs a kafkajs consumer's
 * `eachBatch` loop (timed from its first batch, so its group join is left
 * out), and producing them through the sinks vs a bare idempotent producer.
 * Then the latency from a producer to a consumer of the job's output topic, at
 * half the bare client's rate: a job (source → at-least-once sink) vs a bare
 * kafkajs relay (a consumer whose `eachBatch` sends on through a producer).
 */
import { Effect, Fiber } from "effect"
import { Kafka, logLevel } from "kafkajs"
import { Pipeline, Sinks, Sources, Stage, Tributary } from "../core/src/index.ts"
import { KafkaClient, KafkaSink, KafkaSource } from "../plugins/kafka/src/index.ts"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { type Benchmark, type Measurement, perSecond } from "./harness.ts"

const N = 200_000
/** Records consumed per run: more than produced, so that a run lasts seconds, not a fraction of one. */
const CONSUMED = 1_000_000
const ROUNDS = 3
const PARTITIONS = 4
const BATCH = 1000
const value = "x".repeat(100)

/** The test broker as a process of its own, so that it does not share the measured process's thread. */
const brokerProcess = () =>
  new Promise<{ readonly brokers: string; readonly stop: () => void }>((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL("../test/kafka-broker/main.ts", import.meta.url))], { stdio: ["ignore", "pipe", "inherit"] })
    child.stdout!.on("data", (chunk: Buffer) => {
      const m = /PORT (\d+)/.exec(chunk.toString())
      if (m) resolve({ brokers: `127.0.0.1:${m[1]}`, stop: () => void child.kill("SIGTERM") })
    })
    child.once("exit", (code) => reject(new Error(`test broker exited with ${code}`)))
  })

export const kafka: Benchmark = {
  name: "kafka",
  description: "Kafka source and sinks vs bare kafkajs (consume, produce) on the same broker",
  run: async () => {
    const broker = process.env.KAFKA_BROKERS ? undefined : await brokerProcess()
    const brokers = (process.env.KAFKA_BROKERS ?? broker!.brokers).split(",")
    const client = new Kafka({ brokers, logLevel: logLevel.NOTHING })
    const layer = KafkaClient.layer({ brokers })
    let topics = 0
    const unique = (name: string) => `bench-${name}-${Date.now()}-${topics++}`
    const records = Array.from({ length: N }, (_, i) => `${i}`)
    const admin = client.admin()
    await admin.connect()
    const topic = async (name: string) => {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: name, numPartitions: PARTITIONS }] })
      return name
    }
    const results: Array<Measurement> = []
    /**
     * Milliseconds of each variant, best of `ROUNDS` run in turn (a disturbance falls on one run of
     * one variant, not on all of a variant's). A variant answers the time it measured.
     */
    const rounds = async (variants: ReadonlyArray<readonly [string, () => Promise<number>]>, count = N) => {
      const best = variants.map(() => Infinity)
      for (let round = 0; round < ROUNDS; round++) {
        for (const [i, [, run]] of variants.entries()) best[i] = Math.min(best[i]!, await run())
      }
      for (const [i, [variant]] of variants.entries()) results.push({ benchmark: "kafka", variant, unit: "records/s", value: perSecond(count, best[i]!) })
    }
    const timed = (body: () => Promise<unknown>) => async () => {
      const t0 = performance.now()
      await body()
      return performance.now() - t0
    }

    // Produce, each run into a topic of its own; the input of the consume rows first.
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const produceInto = async (into: string) => {
      for (let i = 0; i < N; i += BATCH) {
        await producer.sendBatch({ acks: -1, topicMessages: [{ topic: into, messages: records.slice(i, i + BATCH).map((k) => ({ key: k, value })) }] })
      }
    }
    const input = await topic(unique("input"))
    for (let i = 0; i < CONSUMED; i += N) await produceInto(input)
    const sinkRun = (guarantee: "at-least-once" | "exactly-once") => async () => {
      const sink = KafkaSink.sink<string>({ topic: await topic(unique(guarantee)), guarantee, message: (k) => ({ key: k, value }) })
      return timed(() =>
        Effect.runPromise(Effect.provide(
          Tributary.run(Pipeline.from(Sources.fromIterable(records)).pipe(Stage.writeTo(sink)), {
            batchSize: BATCH,
            ...(guarantee === "exactly-once" ? { processingGuarantee: "exactly-once" as const, snapshotInterval: "1 second" } : {})
          }),
          layer
        )))()
    }
    await rounds([
      ["produce: bare kafkajs producer", async () => {
        const into = await topic(unique("bare"))
        return timed(() => produceInto(into))()
      }],
      ["produce: sink at-least-once", sinkRun("at-least-once")],
      ["produce: sink exactly-once", sinkRun("exactly-once")]
    ])
    await producer.disconnect()

    // Consume the input topic, whole, each run.
    const bareConsume = async () => {
      const consumer = client.consumer({ groupId: unique("group") })
      await consumer.connect()
      await consumer.subscribe({ topics: [input], fromBeginning: true })
      let count = 0
      let first = 0
      const ms = await new Promise<number>((resolve) => {
        void consumer.run({
          eachBatch: async ({ batch }) => {
            if (count === 0) first = performance.now()
            count += batch.messages.length
            if (count >= CONSUMED) resolve(performance.now() - first)
          }
        })
      })
      await consumer.disconnect()
      return ms
    }
    // Timed as the bare consumer is: from the first record to the last (the job's start, its
    // metadata and offset lookups, left out as the consumer's group join is).
    const sourceConsume = async () => {
      let seen = 0
      let first = 0
      let last = 0
      await Effect.runPromise(Effect.provide(
        Tributary.run(Pipeline.from(KafkaSource.source({ topics: [input], bounded: true })).pipe(
          Stage.filter(() => {
            if (seen === 0) first = performance.now()
            if (++seen === CONSUMED) last = performance.now()
            return false
          }),
          Stage.writeTo(Sinks.collect())
        ), { batchSize: BATCH }),
        layer
      ))
      if (seen !== CONSUMED) throw new Error(`source read ${seen} of ${CONSUMED}`)
      return last - first
    }
    await rounds([
      ["consume: bare kafkajs consumer (from its first batch)", bareConsume],
      ["consume: source (from its first record)", sourceConsume]
    ], CONSUMED)
    const consumeRate = results.find((r) => r.variant.startsWith("consume: bare"))!.value

    // Latency at half the bare client's rate (the lower of producing and consuming, so the load can be
    // sent as asked): the producer stamps each value with its send time.
    const rate = Math.min(consumeRate, results.find((r) => r.variant.startsWith("produce: bare"))!.value) / 2
    const latency = async (variant: string, relay: (from: string, to: string) => Promise<() => Promise<void>>) => {
      const [from, to] = [await topic(unique("lat-in")), await topic(unique("lat-out"))]
      const stop = await relay(from, to)
      const reader = client.consumer({ groupId: unique("lat-reader") })
      await reader.connect()
      await reader.subscribe({ topics: [to], fromBeginning: true })
      const joined = new Promise<void>((resolve) => reader.on(reader.events.GROUP_JOIN, () => resolve()))
      const latencies: Array<number> = []
      const total = Math.min(N / 4, Math.round(rate * 3))
      const all = new Promise<void>((resolve) => {
        void reader.run({
          eachBatch: async ({ batch }) => {
            const now = Date.now()
            for (const m of batch.messages) latencies.push(now - Number(m.value!.toString()))
            if (latencies.length >= total) resolve()
          }
        })
      })
      await joined
      const sender = client.producer({ idempotent: true, maxInFlightRequests: 1 })
      await sender.connect()
      // Every 5 ms the records of 5 ms at `rate`.
      const perTick = Math.max(1, Math.round(rate / 200))
      for (let sent = 0; sent < total; sent += perTick) {
        const tick = Date.now()
        const stamp = String(tick)
        await sender.send({ topic: from, acks: -1, messages: Array.from({ length: Math.min(perTick, total - sent) }, (_, i) => ({ key: String(sent + i), value: stamp })) })
        await new Promise((r) => setTimeout(r, Math.max(0, 5 - (Date.now() - tick))))
      }
      await all
      await Promise.all([sender.disconnect(), reader.disconnect(), stop()])
      latencies.sort((a, b) => a - b)
      const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
      for (const [q, name] of [[0.5, "p50"], [0.99, "p99"]] as const) {
        results.push({ benchmark: "kafka", variant: `latency ${name}: ${variant}`, unit: "ms", value: at(q), details: { at: `${Math.round(rate)} records/s` } })
      }
    }
    await latency("bare kafkajs relay (consumer → producer)", async (from, to) => {
      const relayIn = client.consumer({ groupId: unique("relay") })
      const relayOut = client.producer({ idempotent: true, maxInFlightRequests: 1 })
      await Promise.all([relayIn.connect(), relayOut.connect()])
      await relayIn.subscribe({ topics: [from], fromBeginning: true })
      const joined = new Promise<void>((resolve) => relayIn.on(relayIn.events.GROUP_JOIN, () => resolve()))
      void relayIn.run({
        eachBatch: async ({ batch }) => {
          await relayOut.send({ topic: to, acks: -1, messages: batch.messages.map((m) => ({ key: m.key, value: m.value })) })
        }
      })
      await joined
      return async () => void (await Promise.all([relayIn.disconnect(), relayOut.disconnect()]))
    })
    await latency("job (source → at-least-once sink)", async (from, to) => {
      const job = Pipeline.from(KafkaSource.source({ topics: [from] })).pipe(
        Stage.writeTo(KafkaSink.sink<KafkaSource.KafkaRecord<Buffer>>({ topic: to, message: (r) => ({ key: r.key, value: r.value }) }))
      )
      const fiber = Effect.runFork(Effect.provide(Tributary.run(job, { batchSize: BATCH }), layer))
      return () => Effect.runPromise(Fiber.interrupt(fiber))
    })
    await admin.disconnect()
    broker?.stop()
    const bareOf = (prefix: string) => results.find((r) => r.variant.startsWith(prefix) && r.variant.includes("bare"))!.value
    return results.map((r) => {
      const base = bareOf(r.variant.split(":")[0]!)
      // A rate is better higher, a latency lower: either way the ratio says how near the bare client it is.
      return { ...r, details: { ...r.details, "vs bare": `${(((r.unit === "ms" ? base / Math.max(r.value, 1) : r.value / base)) * 100).toFixed(0)}%` } }
    })
  }
}
