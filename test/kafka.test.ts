/**
 * The Kafka plugin against the in-memory test broker of `test/kafka-broker/`,
 * or against a real cluster when KAFKA_BROKERS is set (`host:port,...`): the
 * tests then use that instead of starting the test broker.
 */
import { buildSync } from "esbuild"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { Effect, Layer, Option, Schema, Scope } from "effect"
import { Kafka, logLevel } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Pipeline, Sinks, Source, Sources, Stage, Tributary } from "../core/src/index.ts"
import { runtimeArgs } from "./cluster-helpers.ts"
import * as Conformance from "../core/src/testing/Conformance.ts"
import { KafkaClient, KafkaSerde, KafkaSink, KafkaSource, murmur2 } from "../plugins/kafka/src/index.ts"
import { start } from "./kafka-broker/Broker.ts"

const node = !("Bun" in globalThis || "Deno" in globalThis)
const external = process.env.KAFKA_BROKERS
let brokers = external ?? ""
let stop = async () => {}
/** Client connections the test broker holds (0 against an external cluster). */
let connections = () => 0
let n = 0
const unique = (name: string) => `tributary-${name}-${Date.now()}-${n++}-${Math.floor(Math.random() * 1e6)}`

if (node) {
  beforeAll(async () => {
    if (external) return
    const broker = await start({ transactionTimeoutMs: 60_000 })
    brokers = broker.brokers
    stop = () => broker.stop()
    connections = () => broker.connections()
  })
  afterAll(() => stop())
}

const layer = Layer.suspend(() => KafkaClient.layer({ brokers: brokers.split(",") }))
const kafka = (at = brokers) => new Kafka({ brokers: at.split(","), logLevel: logLevel.NOTHING })

const produce = async (topic: string, partitions: ReadonlyArray<ReadonlyArray<{ value: string; timestamp?: number; key?: string }>>, at = brokers, perBatch = 500) => {
  const admin = kafka(at).admin()
  await admin.connect()
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions.length }] })
  await admin.disconnect()
  const producer = kafka(at).producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (const [partition, records] of partitions.entries()) {
    for (let i = 0; i < records.length; i += perBatch) {
      await producer.send({
        topic,
        acks: -1,
        messages: records.slice(i, i + perBatch).map((r) => ({ partition, value: r.value, key: r.key ?? null, timestamp: r.timestamp === undefined ? undefined : String(r.timestamp) }))
      })
    }
  }
  await producer.disconnect()
}

/** The values of a source of Kafka records (a batch at a time). */
const values = <V, R>(src: Source.Source<KafkaSource.KafkaRecord<V>, R>): Source.Source<V, R> =>
  Source.make({
    ...src,
    eventTime: undefined,
    open: (ctx) => Effect.map(src.open(ctx), (reader) => ({ ...reader, pull: Effect.map(reader.pull, (b) => b?.map((r) => r.value as V)) }))
  }) as Source.Source<V, R>

/** Every value a read_committed reader sees in `topic`, up to its end now (with the layer's client). */
const committedValues = (topic: string) =>
  Effect.gen(function*() {
    const out = Sinks.collect<string>()
    yield* Tributary.run(Pipeline.from(values(KafkaSource.source({ topics: [topic], value: KafkaSerde.string, bounded: true, isolation: "read_committed" }))).pipe(Stage.writeTo(out)))
    return out.items as ReadonlyArray<string>
  })

const run = <A, E>(effect: Effect.Effect<A, E, KafkaClient.KafkaClient>) => Effect.runPromise(Effect.provide(effect, layer) as Effect.Effect<A, E | KafkaClient.KafkaError>)

const api = { describe: describe.skipIf(!node), it, expect }

Conformance.source(api, {
  name: "KafkaSource",
  layer,
  rescalable: true,
  source: (records) =>
    Effect.promise(async () => {
      const topic = unique("source")
      // Five partitions of uneven length (by i² mod 5).
      await produce(topic, Array.from({ length: 5 }, (_, p) => records.filter((_, i) => (i * i) % 5 === p).map((value) => ({ value }))))
      return values(KafkaSource.source({ topics: [topic], value: KafkaSerde.string, bounded: true }))
    }),
  // Each list a partition of its own.
  splits: (perSplit, { bounded }) =>
    Effect.promise(async () => {
      const topic = unique("splits")
      await produce(topic, perSplit.map((records) => records.map((value) => ({ value }))))
      return values(KafkaSource.source({ topics: [topic], value: KafkaSerde.string, bounded }))
    })
})

Conformance.sink(api, {
  name: "KafkaSink exactly-once",
  layer,
  guarantee: "exactly-once",
  sink: () =>
    Effect.gen(function*() {
      const topic = unique("sink")
      yield* Effect.promise(() => produce(topic, [[], [], []]))
      return {
        sink: KafkaSink.sink<string>({ topic, guarantee: "exactly-once", message: (value) => ({ key: value, value }) }),
        committed: committedValues(topic)
      }
    })
})

Conformance.sink(api, {
  name: "KafkaSink at-least-once",
  layer,
  guarantee: "at-least-once",
  sink: () =>
    Effect.gen(function*() {
      const topic = unique("sink-alo")
      yield* Effect.promise(() => produce(topic, [[], []]))
      return { sink: KafkaSink.sink<string>({ topic, message: (value) => ({ key: value, value }) }), committed: committedValues(topic) }
    })
})

describe("murmur2", () => {
  it("is the Java client's (its known vectors), so keys land on the partitions Java producers pick", () => {
    // From Kafka's UtilsTest.testMurmur2.
    const vectors: Array<[string, number]> = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
      ["abc", 479470107]
    ]
    for (const [key, hash] of vectors) expect(murmur2(Buffer.from(key))).toBe(hash)
  })
})

describe("deserializers", () => {
  it("decode strings, JSON, a Schema over JSON and Avro; throw on bad input", () => {
    expect(KafkaSerde.string(Buffer.from("héllo"))).toBe("héllo")
    expect(() => KafkaSerde.string(Buffer.from([0xff]))).toThrow()
    expect(KafkaSerde.json(Buffer.from(`{"a":1}`))).toEqual({ a: 1 })
    const order = KafkaSerde.schema(Schema.Struct({ id: Schema.Number }))
    expect(order(Buffer.from(`{"id":3}`))).toEqual({ id: 3 })
    expect(() => order(Buffer.from(`{"id":"x"}`))).toThrow()
    const type = { type: "record" as const, name: "T", fields: [{ name: "id", type: "int" }] }
    const avsc = KafkaSerde.avroOf<{ id: number }>(type)
    expect(avsc(Buffer.from([0x06]))).toEqual({ id: 3 })
    expect(() => avsc(Buffer.from([]))).toThrow()
  })
})

describe.skipIf(!node)("Kafka source and sink", () => {
  it.skipIf(external)("closing the client closes every connection it opened, even one a call cut short opens in the background (it kept a finished job's process alive)", async () => {
    // Once the connections of the tests before have closed.
    let before = -1
    while (connections() !== before) {
      before = connections()
      await new Promise((r) => setTimeout(r, 300))
    }
    await run(Effect.flatMap(KafkaClient.KafkaClient, (client) =>
      Effect.sync(() => {
        // Not awaited, as a metadata refresh of a fiber interrupted mid-call goes on.
        void client.kafka.admin().connect().catch(() => {})
      })))
    for (const deadline = Date.now() + 5000; connections() > before && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20))
    expect(connections()).toBe(before)
  })

  it("a missing topic fails at start with KafkaTopicNotFound naming it; create: makes it", async () => {
    const topic = unique("missing")
    const failed = await run(Effect.flip(Tributary.run(Pipeline.from(KafkaSource.source({ topics: [topic], bounded: true })).pipe(Stage.writeTo(Sinks.collect())))))
    expect(String(failed)).toContain(topic)
    expect(JSON.stringify(failed)).toContain("KafkaTopicNotFound")
    const items = await run(Effect.gen(function*() {
      const out = Sinks.collect<unknown>()
      yield* Tributary.run(Pipeline.from(KafkaSource.source({ topics: [topic], bounded: true, create: { partitions: 2 } })).pipe(Stage.writeTo(out)))
      return out.items
    }))
    expect(items).toEqual([])
  }, 30_000)

  it("an undecodable value fails with KafkaDecodeError naming topic, partition and offset", async () => {
    const topic = unique("decode")
    await produce(topic, [[{ value: `{"id":1}` }, { value: "not json" }]])
    const failed = await run(Effect.flip(Tributary.run(Pipeline.from(KafkaSource.source({ topics: [topic], bounded: true, value: KafkaSerde.json })).pipe(Stage.writeTo(Sinks.collect())))))
    expect(String(failed) + JSON.stringify(failed)).toContain(`${topic}/0@1`)
  }, 30_000)

  it("with a string deserializer and Stage.decode, a poison value goes to dead letters naming its partition and offset; the rest goes on", async () => {
    const topic = unique("dead")
    await produce(topic, [[{ value: `{"id":1}` }, { value: `{"id":2}` }], [{ value: `{"id":3}` }, { value: "not json" }, { value: `{"id":5}` }]])
    const Order = Schema.Struct({ value: Schema.fromJsonString(Schema.Struct({ id: Schema.Number })) })
    const { items, dead } = await run(Effect.gen(function*() {
      const out = Sinks.collect<{ readonly value: { readonly id: number } }>()
      const dead = Sinks.collect<Stage.DeadLetter>()
      yield* Tributary.run(
        Pipeline.from(KafkaSource.source({ topics: [topic], bounded: true, value: KafkaSerde.string })).pipe(Stage.decode(Order, { deadLetters: dead }), Stage.writeTo(out))
      )
      return { items: out.items.map((o) => o.value.id).sort(), dead: dead.items }
    }))
    expect(items).toEqual([1, 2, 3, 5])
    expect(dead.length).toBe(1)
    const letter = dead[0]!
    const record = letter.record as KafkaSource.KafkaRecord<string>
    expect([letter.split, record.partition, record.offset, record.value]).toEqual([`${topic}/1`, 1, 1, "not json"])
    expect(Number(letter.position) + letter.index!).toBe(1)
  }, 30_000)

  it("group: offsets of completed snapshots are committed to the group (what was read), never those of a snapshot not complete", async () => {
    const topic = unique("group")
    await produce(topic, [[{ value: "a" }, { value: "b" }, { value: "c" }], [{ value: "d" }], []])
    const committed = async (groupId: string) => {
      const admin = kafka().admin()
      await admin.connect()
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
      await admin.disconnect()
      return offsets!.partitions.map((p) => [p.partition, Number(p.offset)]).sort((a, b) => a[0]! - b[0]!)
    }
    /** Reads all four records in an unbounded job snapshotting every `interval`, then what the group has once `settled` holds. */
    const readWith = (group: string, interval: "20 millis" | "1 hour", settled: (offsets: Array<Array<number>>) => boolean) =>
      run(Effect.scoped(Effect.gen(function*() {
        const out = Sinks.collect<string>()
        const job = yield* Tributary.submit(
          Pipeline.from(values(KafkaSource.source({ topics: [topic], value: KafkaSerde.string, group }))).pipe(Stage.writeTo(out)),
          { processingGuarantee: "exactly-once", snapshotInterval: interval }
        )
        while (out.items.length < 4) yield* Effect.sleep(10)
        let offsets = yield* Effect.promise(() => committed(group))
        for (let tries = 0; !settled(offsets) && tries < 25; tries++) {
          yield* Effect.sleep(20)
          offsets = yield* Effect.promise(() => committed(group))
        }
        yield* job.cancel
        return offsets
      })))
    const ends = [[0, 3], [1, 1], [2, 0]]
    expect(await readWith(unique("g"), "20 millis", (o) => JSON.stringify(o) === JSON.stringify(ends))).toEqual(ends)
    // No snapshot completes while it runs: everything was read, nothing is committed.
    expect(await readWith(unique("g"), "1 hour", () => false)).toEqual([[0, -1], [1, -1], [2, -1]])
    // A bounded job that succeeded is done with all it read: its offsets are committed, whatever the interval.
    const bounded = unique("g")
    await run(Tributary.run(
      Pipeline.from(KafkaSource.source({ topics: [topic], bounded: true, group: bounded })).pipe(Stage.writeTo(Sinks.collect())),
      { processingGuarantee: "exactly-once", snapshotInterval: "1 hour" }
    ))
    expect(await committed(bounded)).toEqual(ends)
  }, 30_000)

  it("exactly-once: a transactionTimeout not above the snapshot interval plus a minute fails at open, saying both", async () => {
    const topic = unique("timeout")
    await produce(topic, [[]])
    const failure = (options: Partial<KafkaSink.KafkaSinkOptions<string>>) =>
      run(Effect.flip(Tributary.run(
        Pipeline.from(Sources.fromIterable(["a"])).pipe(Stage.writeTo(KafkaSink.sink<string>({ topic, guarantee: "exactly-once", message: (value) => ({ value }), ...options }))),
        { processingGuarantee: "exactly-once" }
      ))).then((e) => String(e) + JSON.stringify(e))
    // kafkajs's default (60 s) against the job's default interval (10 s).
    const short = await failure({ transactionTimeout: "60 seconds" })
    expect(short).toContain("KafkaTransactionTimeoutTooShort")
    expect(short).toContain("transactionTimeout 60000 ms must exceed the snapshot interval 10000 ms")
    expect(await failure({ transactionTimeout: "5 minutes", snapshotInterval: "5 minutes" })).toContain("transactionTimeout 300000 ms must exceed the snapshot interval 300000 ms")
    expect(await committedValues(topic).pipe(run)).toEqual([])
  }, 30_000)

  it("exactly-once rescaled down: a transaction an instance gone left open is aborted and that instance fenced, so readers are not held back", async () => {
    const topic = unique("rescale-down")
    await produce(topic, [[]])
    const sink = KafkaSink.sink<string>({ topic, guarantee: "exactly-once", message: (value) => ({ value }) })
    const job = unique("job")
    const outcome = await run(Effect.gen(function*() {
      // Instance 2 of 3 writes in a transaction, then its member dies: its scope is never closed.
      const gone = yield* sink.open({ instance: 2, instances: 3, job, execution: 1 }).pipe(Scope.provide(yield* Scope.make()))
      yield* gone.write(["left open"])
      // The job restarts on 2 instances: instance 0 answers for instance 2 (2 mod 2).
      yield* Effect.scoped(Effect.gen(function*() {
        const writers = yield* Effect.forEach([0, 1], (instance) => sink.open({ instance, instances: 2, job, execution: 2, restoredSnapshot: 1 }))
        yield* writers[1]!.write(["after the restart"])
        yield* writers[1]!.prepare!(2)
        yield* writers[1]!.commit!(2)
      }))
      // Without the fence, the open transaction holds read_committed readers back until it times out (60 s).
      const seen = yield* Effect.timeoutOption(committedValues(topic), "10 seconds")
      const zombie = yield* Effect.exit(gone.write(["from the zombie"]))
      return { seen, zombie: String(zombie) }
    }) as Effect.Effect<{ seen: Option.Option<ReadonlyArray<string>>; zombie: string }, unknown, KafkaClient.KafkaClient>)
    expect(outcome.seen).toEqual(Option.some(["after the restart"]))
    expect(outcome.zombie).toMatch(/epoch|fenced/i)
  }, 30_000)

  it("records carry key, value, headers, timestamp, partition and offset; from latest / timestamp skip what came before", async () => {
    const topic = unique("fields")
    await produce(topic, [[{ value: "a", key: "k", timestamp: 1000 }, { value: "b", timestamp: 2000 }], [{ value: "c", timestamp: 3000 }]])
    const read = (from: KafkaSource.StartFrom) =>
      run(Effect.gen(function*() {
        const out = Sinks.collect<KafkaSource.KafkaRecord<string>>()
        yield* Tributary.run(Pipeline.from(KafkaSource.source({ topics: [topic], bounded: true, value: KafkaSerde.string, from })).pipe(Stage.writeTo(out)))
        return [...out.items].sort((a, b) => a.timestamp - b.timestamp)
      }))
    const all = await read("earliest")
    expect(all.map((r) => [r.value, r.partition, r.offset, r.timestamp, r.key?.toString() ?? null])).toEqual([["a", 0, 0, 1000, "k"], ["b", 0, 1, 2000, null], ["c", 1, 0, 3000, null]])
    expect(await read("latest")).toEqual([])
    expect((await read({ timestamp: 1500 })).map((r) => r.value)).toEqual(["b", "c"])
  }, 30_000)

  it("a partition added while running is discovered and read from its earliest offset (the others from latest)", async () => {
    const topic = unique("discover")
    await produce(topic, [[{ value: "p0" }]])
    const items = await run(Effect.scoped(Effect.gen(function*() {
      const out = Sinks.collect<string>()
      const job = yield* Tributary.submit(Pipeline.from(values(KafkaSource.source({ topics: [topic], value: KafkaSerde.string, discoverEvery: "50 millis", from: "latest" }))).pipe(Stage.writeTo(out)))
      yield* Effect.sleep(200)
      yield* Effect.promise(async () => {
        const admin = kafka().admin()
        await admin.connect()
        await admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] })
        await admin.disconnect()
        const producer = kafka().producer()
        await producer.connect()
        await producer.send({ topic, messages: [{ partition: 1, value: "p1" }] })
        await producer.disconnect()
      })
      while (out.items.length < 1) yield* Effect.sleep(10)
      yield* Effect.sleep(100)
      yield* job.cancel
      return [...out.items]
    })))
    expect(items).toEqual(["p1"])
  }, 30_000)
})

/**
 * The test broker as its own process on a data directory, so it can be SIGKILLed and started again on the same
 * port and data. A Node without TypeScript type stripping runs it bundled by esbuild (vitest's own).
 */
const brokerProcess = () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-kafka-"))
  const main = join(import.meta.dirname, "kafka-broker/main.ts")
  let script = main
  if (!(process.features as { typescript?: unknown }).typescript) {
    script = join(dataDir, "broker.mjs")
    buildSync({ entryPoints: [main], bundle: true, platform: "node", format: "esm", packages: "external", outfile: script })
  }
  let child: ChildProcess | undefined
  const launch = (port: number) =>
    new Promise<number>((resolve, reject) => {
      child = spawn(process.execPath, [script, "--port", String(port), "--data-dir", join(dataDir, "data")], { stdio: ["ignore", "pipe", "inherit"] })
      child.stdout!.on("data", (chunk: Buffer) => {
        const m = /PORT (\d+)/.exec(chunk.toString())
        if (m) resolve(Number(m[1]))
      })
      child.once("exit", (code) => reject(new Error(`test broker exited with ${code}`)))
    })
  const kill = async () => {
    const exited = new Promise((r) => child!.once("exit", r))
    child!.kill("SIGKILL")
    await exited
  }
  return { launch, kill, remove: () => rmSync(dataDir, { recursive: true, force: true }) }
}

describe.skipIf(!node || external !== undefined)("Kafka broker restart", () => {
  it("SIGKILLed mid-job and started again on its data: the job (source to exactly-once sink) recovers, each record once", async () => {
    const broker = brokerProcess()
    try {
      const port = await broker.launch(0)
      const at = `127.0.0.1:${port}`
      const input = unique("restart-in")
      const output = unique("restart-out")
      const records = Array.from({ length: 2000 }, (_, i) => `r${i}`)
      // Batches of 20 read a batch per fetch: the source is still fetching when the broker goes down.
      await produce(input, [0, 1, 2].map((p) => records.filter((_, i) => i % 3 === p).map((value) => ({ value }))), at, 20)
      await produce(output, [[], []], at)
      const client = KafkaClient.layer({ brokers: [at] })
      const committed = await Effect.runPromise(Effect.provide(Effect.scoped(Effect.gen(function*() {
        let seen = 0
        const job = yield* Tributary.submit(
          Pipeline.from(values(KafkaSource.source({ topics: [input], value: KafkaSerde.string, bounded: true, maxBytes: 1 }))).pipe(
            Stage.mapEffect((r: string) => Effect.as(Effect.sleep(1), r), { concurrency: 2 }),
            Stage.map((r) => {
              seen++
              return r
            }),
            Stage.writeTo(KafkaSink.sink<string>({ topic: output, guarantee: "exactly-once", message: (value) => ({ key: value, value }) }))
          ),
          { processingGuarantee: "exactly-once", snapshotInterval: "50 millis", batchSize: 16 }
        )
        while (seen < records.length / 4) yield* Effect.sleep(5)
        yield* Effect.promise(async () => {
          await broker.kill()
          await broker.launch(port)
        })
        const seenAtRestart = seen
        yield* job.join
        return { items: yield* committedValues(output), seenAtRestart }
      })), client))
      // The broker went down with the job mid-way; kafkajs's retries (or a restart of the job) carried it over.
      expect(committed.seenAtRestart).toBeLessThan(records.length)
      expect(committed.items.slice().sort()).toEqual(records.slice().sort())
    } finally {
      await broker.kill().catch(() => {})
      broker.remove()
    }
  }, 60_000)
})

describe.skipIf(!node)("Kafka end to end", () => {
  // 3000 records of 7 keys, 10 ms of event time apart, over 3 partitions; each partition's
  // neighbours swapped (out of order by 10 ms, within the allowed lag of 100).
  const T0 = 1_700_000_000_000
  const records = Array.from({ length: 3000 }, (_, i) => ({ key: `k${i % 7}`, amount: i % 13, timestamp: T0 + i * 10 }))
  const partitions = [0, 1, 2].map((p) => {
    const mine = records.filter((_, i) => i % 3 === p)
    for (let i = 0; i + 1 < mine.length; i += 2) [mine[i], mine[i + 1]] = [mine[i + 1]!, mine[i]!]
    return mine
  })
  /** The sums per key and sliding window (1 s every 0.5 s), computed plainly. */
  const expected = () => {
    const sums = new Map<string, number>()
    for (const r of records) {
      const last = Math.floor(r.timestamp / 500) * 500
      for (const start of [last - 500, last]) sums.set(`${r.key} ${start}`, (sums.get(`${r.key} ${start}`) ?? 0) + r.amount)
    }
    return [...sums].map(([window, sum]) => `${window} ${sum}`).sort()
  }

  it("Kafka → sliding event-time window → Kafka, exactly-once, the job SIGKILLed three times (once between snapshot and commit): kcat reading committed sees every window once", async () => {
    const input = unique("e2e-in")
    const output = unique("e2e-out")
    await produce(input, partitions.map((rs) => rs.map((r) => ({ value: `${r.key}:${r.amount}`, timestamp: r.timestamp }))), brokers, 100)
    await produce(output, [[], []])
    const snapshots = mkdtempSync(join(tmpdir(), "tributary-kafka-e2e-"))
    const script = join(import.meta.dirname, "fixtures", "kafka-window-process.ts")

    /** Runs the job as a process of its own; SIGKILLs it `killAfter` ms after it runs (or it kills itself at a commit). */
    const launch = (killAfter: number | undefined, killAtCommit?: number) =>
      new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, [...runtimeArgs, script, brokers, input, output, snapshots, "e2e"], {
          stdio: ["ignore", "pipe", "inherit"],
          env: { ...process.env, TRIBUTARY_KILL_AT_COMMIT: String(killAtCommit ?? 0) }
        })
        child.stdout!.on("data", (chunk: Buffer) => {
          if (killAfter !== undefined && chunk.toString().includes("running")) setTimeout(() => child.kill("SIGKILL"), killAfter)
        })
        // A run that hangs fails the test saying so, rather than at the test's timeout.
        const guard = setTimeout(() => {
          child.kill("SIGKILL")
          reject(new Error(`the job process did not end within 40 s (killAfter ${killAfter}, killAtCommit ${killAtCommit})`))
        }, 40_000)
        child.once("error", reject)
        child.once("exit", (code, signal) => {
          clearTimeout(guard)
          resolve(signal === "SIGKILL" ? null : code)
        })
      })
    try {
      const random = (seed: number) => 150 + ((seed * 7919) % 500)
      // Killed at random moments twice, then at the third commit after a snapshot completed.
      expect(await launch(random(Date.now() % 1000))).toBe(null)
      expect(await launch(random(Date.now() % 997))).toBe(null)
      expect(await launch(undefined, 3)).toBe(null)
      expect(await launch(undefined)).toBe(0)
      // Not blocking: the test broker answers from this process.
      const { stdout: read } = await promisify(execFile)("kcat", ["-C", "-b", brokers, "-t", output, "-e", "-q", "-X", "isolation.level=read_committed", "-f", "%s\\n"], { encoding: "utf8" })
      const lines = read.split("\n").filter((l) => l.length > 0).sort()
      expect(lines.length).toBe(expected().length)
      expect(lines).toEqual(expected())
    } finally {
      rmSync(snapshots, { recursive: true, force: true })
    }
  }, 120_000)
})
