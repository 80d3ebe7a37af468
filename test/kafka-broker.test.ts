/**
 * The in-memory Kafka test broker, checked by three independent clients: kafkajs, @platformatic/kafka and
 * kcat (librdkafka), plus a SIGKILL/restart of the broker process on its data directory.
 */
import { MessagesStreamModes, Consumer as PConsumer, Producer as PProducer, stringDeserializers, stringSerializers } from "@platformatic/kafka"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { appendFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CompressionTypes, type Consumer, Kafka, logLevel } from "kafkajs"
import { createRequire } from "node:module"
import { connect } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Broker, start } from "./kafka-broker/Broker.ts"

process.env["KAFKAJS_NO_PARTITIONER_WARNING"] = "1"
const nodeOnly = "Bun" in globalThis || "Deno" in globalThis

const client = (brokers: string) => new Kafka({ brokers: [brokers], clientId: "kb-test", logLevel: logLevel.NOTHING })

/** Runs `consumer` until `n` messages arrived (or fails after `ms`), returning `partition:value` strings. */
const collect = async (consumer: Consumer, n: number, ms = 15_000): Promise<Array<string>> => {
  const got: Array<string> = []
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`got ${got.length}/${n}: ${got.join(",")}`)), ms)
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push(`${partition}:${message.value?.toString()}`)
        if (got.length >= n) {
          clearTimeout(timer)
          resolve()
        }
      }
    })
  })
  return got
}

/** Everything in `topic` as seen by a fresh consumer (read_committed unless told otherwise), after `settleMs`. */
const readAll = async (kafka: Kafka, topic: string, readUncommitted = false, settleMs = 1500): Promise<Array<string>> => {
  const consumer = kafka.consumer({ groupId: `read-${topic}-${Math.random()}`, readUncommitted, maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got: Array<string> = []
  await consumer.run({ eachMessage: async ({ message }) => void got.push(message.value!.toString()) })
  await new Promise((r) => setTimeout(r, settleMs))
  await consumer.disconnect()
  return got.sort()
}

const kcat = (args: ReadonlyArray<string>, input?: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = execFile("kcat", [...args], { timeout: 20_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`kcat ${args.join(" ")}: ${stderr}`)) : resolve(stdout)
    )
    if (input !== undefined) child.stdin!.end(input)
  })

// kafkajs's own request encoders and response decoders, for checks its high-level client cannot provoke.
const require = createRequire(import.meta.url)
const kafkajsRequest = (name: string) => require(`kafkajs/src/protocol/requests/${name}/request.js`)
const kafkajsDecode = (name: string) => require(`kafkajs/src/protocol/requests/${name}/response.js`).decode

/** Sends kafkajs-encoded requests over one connection and decodes the responses (without kafkajs's error throwing). */
const rawClient = async (brokers: string) => {
  const encodeFrame = require("kafkajs/src/protocol/request.js")
  const [host, port] = brokers.split(":")
  const socket = connect(Number(port), host)
  await new Promise((r) => socket.once("connect", r))
  let pending = Buffer.alloc(0)
  const waiting: Array<(b: Buffer) => void> = []
  socket.on("data", (chunk) => {
    pending = Buffer.concat([pending, chunk])
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const frame = pending.subarray(8, 4 + pending.readInt32BE(0))
      pending = pending.subarray(4 + pending.readInt32BE(0))
      waiting.shift()!(frame)
    }
  })
  let correlationId = 0
  return {
    send: async (request: any, decode: (b: Buffer) => Promise<any>, mangle = (b: Buffer) => b): Promise<any> => {
      const frame = mangle(Buffer.from((await encodeFrame({ correlationId: correlationId++, clientId: "raw", request })).buffer))
      const response = new Promise<Buffer>((r) => waiting.push(r))
      socket.write(frame)
      return decode(await response)
    },
    close: () => socket.destroy()
  }
}

describe.skipIf(nodeOnly)("Kafka test broker", () => {
  let broker: Broker
  beforeAll(async () => {
    broker = await start({ transactionTimeoutMs: 20_000 })
  })
  afterAll(() => broker.stop())

  it("kafkajs admin: topics, partitions, offsets by time, groups", async () => {
    const kafka = client(broker.brokers)
    const admin = kafka.admin()
    await admin.connect()
    expect(await admin.createTopics({ topics: [{ topic: "admin-t", numPartitions: 1 }] })).toBe(true)
    expect(await admin.createTopics({ topics: [{ topic: "admin-t", numPartitions: 1 }] })).toBe(false)
    await admin.createPartitions({ topicPartitions: [{ topic: "admin-t", count: 3 }] })
    const metadata = await admin.fetchTopicMetadata({ topics: ["admin-t"] })
    expect(metadata.topics[0]!.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2])
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({
      topic: "admin-t",
      messages: [1000, 2000, 3000].map((t) => ({ partition: 0, value: `at-${t}`, timestamp: String(t) }))
    })
    const byTime = async (ts: number) => (await admin.fetchTopicOffsetsByTimestamp("admin-t", ts))[0]!.offset
    expect([await byTime(0), await byTime(1500), await byTime(3000), await byTime(9999)]).toEqual(["0", "1", "2", "3"])
    // A compressed batch is stored as sent; its base offset stands for its records in a lookup by time.
    await producer.send({ topic: "admin-t", compression: CompressionTypes.GZIP, messages: [{ partition: 1, value: "gz-1", timestamp: "5000" }, { partition: 1, value: "gz-2", timestamp: "6000" }] })
    await producer.disconnect()
    expect((await admin.fetchTopicOffsetsByTimestamp("admin-t", 5500)).find((o) => o.partition === 1)!.offset).toBe("0")
    const offsets = await admin.fetchTopicOffsets("admin-t")
    expect(offsets.find((o) => o.partition === 0)).toMatchObject({ low: "0", high: "3" })
    expect(broker.endOffsets("admin-t")).toEqual([3, 2, 0])
    expect((await readAll(kafka, "admin-t", false, 800)).filter((v) => v.startsWith("gz"))).toEqual(["gz-1", "gz-2"])
    await admin.deleteTopics({ topics: ["admin-t"] })
    expect((await admin.listTopics()).includes("admin-t")).toBe(false)
    await admin.disconnect()
  })

  it("kafkajs: two consumers in a group rebalance, and committed offsets resume the group", async () => {
    const kafka = client(broker.brokers)
    broker.createTopic("group-t", 4)
    const producer = kafka.producer()
    await producer.connect()
    const consumerOpts = { groupId: "group-g", heartbeatInterval: 300, maxWaitTimeInMs: 100 }
    const a = kafka.consumer(consumerOpts)
    const b = kafka.consumer(consumerOpts)
    const assignments = new Map<Consumer, Array<number>>()
    const seen: Array<string> = []
    const join = async (c: Consumer) => {
      c.on(c.events.GROUP_JOIN, (e) => void assignments.set(c, e.payload.memberAssignment["group-t"] ?? []))
      await c.connect()
      await c.subscribe({ topic: "group-t", fromBeginning: true })
      await c.run({ eachMessage: async ({ partition, message }) => void seen.push(`${partition}:${message.value}`) })
    }
    await join(a)
    await expect.poll(() => assignments.get(a)?.length, { timeout: 10_000 }).toBe(4)
    // B's join rebalances the group: the four partitions are split between the two members.
    await join(b)
    await expect
      .poll(() => [assignments.get(a)?.length, assignments.get(b)?.length], { timeout: 15_000 })
      .toEqual([2, 2])
    expect([...assignments.get(a)!, ...assignments.get(b)!].sort()).toEqual([0, 1, 2, 3])
    const admin = kafka.admin()
    await admin.connect()
    const { groups } = await admin.describeGroups(["group-g"])
    expect([groups[0]!.state, groups[0]!.members.length]).toEqual(["Stable", 2])
    expect((await admin.listGroups()).groups.map((g) => g.groupId)).toContain("group-g")
    await admin.disconnect()
    const first = [0, 1, 2, 3].map((p) => ({ partition: p, value: `first-${p}` }))
    await producer.send({ topic: "group-t", messages: first })
    await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(4)
    expect(seen.sort()).toEqual(first.map((m) => `${m.partition}:${m.value}`))
    await a.disconnect()
    await b.disconnect()

    // A new member of the same group resumes after the committed offsets: it sees only the later records.
    await producer.send({ topic: "group-t", messages: [{ partition: 1, value: "second" }] })
    const c = kafka.consumer(consumerOpts)
    await c.connect()
    await c.subscribe({ topic: "group-t", fromBeginning: true })
    expect(await collect(c, 1)).toEqual(["1:second"])
    await new Promise((r) => setTimeout(r, 500))
    await c.disconnect()
    await producer.disconnect()
  })

  it("kafkajs: a member that dies without leaving is dropped at its session timeout and the group rebalances", async () => {
    const kafka = client(broker.brokers)
    broker.createTopic("session-t", 4)
    const survivor = kafka.consumer({ groupId: "session-g", heartbeatInterval: 200, maxWaitTimeInMs: 100 })
    let assigned: Array<number> = []
    survivor.on(survivor.events.GROUP_JOIN, (e) => void (assigned = e.payload.memberAssignment["session-t"] ?? []))
    await survivor.connect()
    await survivor.subscribe({ topic: "session-t" })
    await survivor.run({ eachMessage: async () => {} })
    await expect.poll(() => assigned.length, { timeout: 10_000 }).toBe(4)
    // A second member in its own process, killed with SIGKILL once it holds partitions: no LeaveGroup is sent.
    const script = `import { Kafka, logLevel } from "kafkajs"
      const c = new Kafka({ brokers: ["${broker.brokers}"], logLevel: logLevel.NOTHING }).consumer({ groupId: "session-g", sessionTimeout: 2000, heartbeatInterval: 200, maxWaitTimeInMs: 100 })
      c.on(c.events.GROUP_JOIN, () => console.log("JOINED"))
      await c.connect(); await c.subscribe({ topic: "session-t" }); await c.run({ eachMessage: async () => {} })`
    const member = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] })
    await new Promise((resolve) => member.stdout!.on("data", (d: Buffer) => d.toString().includes("JOINED") && resolve(null)))
    await expect.poll(() => assigned.length, { timeout: 10_000 }).toBe(2)
    member.kill("SIGKILL")
    await expect.poll(() => assigned.length, { timeout: 10_000 }).toBe(4)
    await survivor.disconnect()
  })

  it("kafkajs: a read_committed consumer sees committed transactions only; offsets commit with the transaction", async () => {
    const kafka = client(broker.brokers)
    broker.createTopic("txn-t", 2)
    const producer = kafka.producer({ transactionalId: "txn-p", idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const committed = await producer.transaction()
    await committed.send({ topic: "txn-t", messages: [{ value: "c1" }, { value: "c2", partition: 1 }] })
    await committed.sendOffsets({
      consumerGroupId: "txn-g",
      topics: [{ topic: "txn-t", partitions: [{ partition: 0, offset: "7" }] }]
    })
    await committed.commit()
    const aborted = await producer.transaction()
    await aborted.send({ topic: "txn-t", messages: [{ value: "a1" }, { value: "a2", partition: 1 }] })
    await aborted.sendOffsets({
      consumerGroupId: "txn-g",
      topics: [{ topic: "txn-t", partitions: [{ partition: 0, offset: "9" }] }]
    })
    await aborted.abort()
    const last = await producer.transaction()
    await last.send({ topic: "txn-t", messages: [{ value: "c3" }] })
    await last.commit()

    expect(await readAll(kafka, "txn-t")).toEqual(["c1", "c2", "c3"])
    expect(await readAll(kafka, "txn-t", true)).toEqual(["a1", "a2", "c1", "c2", "c3"])
    // An open transaction's records stay invisible to read_committed until it commits.
    const pending = await producer.transaction()
    await pending.send({ topic: "txn-t", messages: [{ value: "pending", partition: 0 }] })
    expect(await readAll(kafka, "txn-t", false, 800)).toEqual(["c1", "c2", "c3"])
    await pending.commit()
    expect(await readAll(kafka, "txn-t", false, 800)).toEqual(["c1", "c2", "c3", "pending"])
    await producer.disconnect()
    const admin = kafka.admin()
    await admin.connect()
    const offsets = await admin.fetchOffsets({ groupId: "txn-g", topics: ["txn-t"] })
    expect(offsets[0]!.partitions.find((p) => p.partition === 0)!.offset).toBe("7")
    expect(broker.committed("txn-g", "txn-t", 0)).toBe(7)
    await admin.disconnect()
  })

  it("kafkajs: a second producer with the same transactional id fences the first", async () => {
    const kafka = client(broker.brokers)
    broker.createTopic("fence-t", 1)
    const first = kafka.producer({ transactionalId: "fence-p", idempotent: true, maxInFlightRequests: 1 })
    await first.connect()
    const open = await first.transaction()
    await open.send({ topic: "fence-t", messages: [{ value: "zombie-1" }] })
    const second = kafka.producer({ transactionalId: "fence-p", idempotent: true, maxInFlightRequests: 1 })
    await second.connect()
    const txn = await second.transaction()
    await txn.send({ topic: "fence-t", messages: [{ value: "winner" }] })
    await txn.commit()
    // The first producer's open transaction was aborted, and it can neither produce nor commit any more.
    await expect(open.send({ topic: "fence-t", messages: [{ value: "zombie-2" }] })).rejects.toThrow(/epoch/)
    await expect(open.commit()).rejects.toThrow(/epoch/)
    expect(broker.openTransactions()).not.toContain("fence-p")
    await Promise.all([first.disconnect(), second.disconnect()])
    expect(await readAll(kafka, "fence-t")).toEqual(["winner"])
  })

  it("kafkajs: a transaction left open past its timeout is aborted and its producer fenced", async () => {
    const broker = await start({ transactionTimeoutMs: 1000 })
    const kafka = client(broker.brokers)
    broker.createTopic("timeout-t", 1)
    const producer = kafka.producer({
      transactionalId: "timeout-p",
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 60_000
    })
    await producer.connect()
    const txn = await producer.transaction()
    await txn.send({ topic: "timeout-t", messages: [{ value: "stale" }] })
    expect(broker.openTransactions()).toContain("timeout-p")
    // This broker caps the timeout at 1 s (transactionTimeoutMs).
    await new Promise((r) => setTimeout(r, 1800))
    await expect(txn.commit()).rejects.toThrow(/epoch/)
    await producer.disconnect()
    const next = kafka.producer({ transactionalId: "timeout-p2", idempotent: true, maxInFlightRequests: 1 })
    await next.connect()
    const ok = await next.transaction()
    await ok.send({ topic: "timeout-t", messages: [{ value: "fresh" }] })
    await ok.commit()
    await next.disconnect()
    expect(await readAll(kafka, "timeout-t")).toEqual(["fresh"])
    await broker.stop()
  })

  it("checks idempotent producer sequences and record batch CRCs (raw kafkajs-encoded requests)", async () => {
    broker.createTopic("seq-t", 1)
    const raw = await rawClient(broker.brokers)
    const init = await raw.send(kafkajsRequest("initProducerId/v0")({ transactionalId: null, transactionTimeout: 1000 }), kafkajsDecode("initProducerId/v0"))
    expect(init.errorCode).toBe(0)
    const Long = require("kafkajs/src/utils/long")
    const produce = (firstSequence: number, values: Array<string>, mangle?: (b: Buffer) => Buffer) =>
      raw
        .send(
          kafkajsRequest("produce/v3")({
            acks: -1,
            timeout: 1000,
            producerId: Long.fromString(init.producerId),
            producerEpoch: init.producerEpoch,
            topicData: [{ topic: "seq-t", partitions: [{ partition: 0, firstSequence, messages: values.map((value) => ({ value })) }] }]
          }),
          kafkajsDecode("produce/v3"),
          mangle
        )
        .then((r) => {
          const p = r.topics[0].partitions[0]
          return [p.errorCode, p.baseOffset]
        })
    expect(await produce(0, ["a", "b"])).toEqual([0, "0"])
    // A retried batch (same sequence) is acknowledged with its original offset and not appended twice.
    expect(await produce(0, ["a", "b"])).toEqual([0, "0"])
    expect(await produce(5, ["gap"])).toEqual([45, "-1"]) // OUT_OF_ORDER_SEQUENCE_NUMBER
    expect(await produce(2, ["c"])).toEqual([0, "2"])
    // A retry of an earlier in-flight batch (one of the last five) is acknowledged too.
    expect(await produce(0, ["a", "b"])).toEqual([0, "0"])
    const flipLast = (b: Buffer) => {
      b[b.length - 1] ^= 0xff
      return b
    }
    expect(await produce(3, ["x"], flipLast)).toEqual([2, "-1"]) // CORRUPT_MESSAGE
    raw.close()
    expect(await readAll(client(broker.brokers), "seq-t", true, 800)).toEqual(["a", "b", "c"])
  })

  it("@platformatic/kafka: produces, consumes in a group and commits a transaction", async () => {
    broker.createTopic("plt-t", 2)
    const opts = { bootstrapBrokers: [broker.brokers], serializers: stringSerializers }
    const producer = new PProducer({ clientId: "plt-p", ...opts })
    await producer.send({ messages: [{ topic: "plt-t", key: "k", value: "plain", partition: 1 }] })
    const tp = new PProducer({ clientId: "plt-tp", transactionalId: "plt-tx", idempotent: true, ...opts })
    const committed = await tp.beginTransaction()
    await committed.send({ messages: [{ topic: "plt-t", key: "k", value: "committed", partition: 0 }] })
    await committed.commit()
    const aborted = await tp.beginTransaction()
    await aborted.send({ messages: [{ topic: "plt-t", key: "k", value: "aborted", partition: 0 }] })
    await aborted.abort()
    const after = await tp.beginTransaction()
    await after.send({ messages: [{ topic: "plt-t", key: "k", value: "after", partition: 0 }] })
    await after.commit()
    await Promise.all([producer.close(), tp.close()])

    const consumer = new PConsumer({
      groupId: "plt-g",
      clientId: "plt-c",
      bootstrapBrokers: [broker.brokers],
      deserializers: stringDeserializers,
      maxWaitTime: 100
    })
    const stream = await consumer.consume({ topics: ["plt-t"], mode: MessagesStreamModes.EARLIEST, isolationLevel: 1 })
    const got: Array<string> = []
    for await (const m of stream) {
      got.push(`${m.partition}:${m.value}`)
      if (got.length === 3) break
    }
    await stream.close()
    await consumer.close()
    expect(got.sort()).toEqual(["0:after", "0:committed", "1:plain"])
    // Its group commits offsets: the next record to read on partition 1 is 1.
    expect(broker.committed("plt-g", "plt-t", 1)).toBe(1)
  })

  it("@platformatic/kafka: a consumer's offsets commit with a transaction, and not with an aborted one", async () => {
    broker.createTopic("plt-in", 1)
    broker.createTopic("plt-out", 1)
    const opts = { bootstrapBrokers: [broker.brokers], serializers: stringSerializers }
    const producer = new PProducer({ clientId: "plt-in-p", ...opts })
    await producer.send({ messages: ["m0", "m1", "m2"].map((value) => ({ topic: "plt-in", value, partition: 0 })) })
    const consumer = new PConsumer({
      groupId: "plt-eos",
      clientId: "plt-eos-c",
      bootstrapBrokers: [broker.brokers],
      deserializers: stringDeserializers,
      maxWaitTime: 100,
      autocommit: false
    })
    const stream = await consumer.consume({ topics: ["plt-in"], mode: MessagesStreamModes.EARLIEST })
    const messages = []
    for await (const m of stream) if (messages.push(m) === 3) break
    const tp = new PProducer({ clientId: "plt-eos-p", transactionalId: "plt-eos-tx", idempotent: true, ...opts })
    const aborted = await tp.beginTransaction()
    await aborted.send({ messages: [{ topic: "plt-out", value: "x", partition: 0 }] })
    await aborted.addConsumer(consumer)
    await aborted.addOffset(messages[2]!)
    await aborted.abort()
    expect(broker.committed("plt-eos", "plt-in", 0)).toBeUndefined()
    const committed = await tp.beginTransaction()
    await committed.send({ messages: [{ topic: "plt-out", value: "y", partition: 0 }] })
    await committed.addConsumer(consumer)
    await committed.addOffset(messages[1]!)
    await committed.commit()
    expect(broker.committed("plt-eos", "plt-in", 0)).toBe(2)
    await stream.close()
    await Promise.all([consumer.close(), producer.close(), tp.close()])
  })

  it("kcat: produces and consumes, and read_committed hides an aborted transaction", async () => {
    await kcat(["-b", broker.brokers, "-P", "-t", "kcat-t"], "one\ntwo\n")
    const consume = (isolation: string) =>
      kcat(["-b", broker.brokers, "-C", "-t", "kcat-t", "-o", "beginning", "-e", "-X", `isolation.level=${isolation}`, "-f", "%s\n"])
    expect(await consume("read_committed")).toBe("one\ntwo\n")
    const producer = client(broker.brokers).producer({ transactionalId: "kcat-p", idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const txn = await producer.transaction()
    await txn.send({ topic: "kcat-t", messages: [{ value: "aborted" }] })
    await txn.abort()
    await producer.disconnect()
    await kcat(["-b", broker.brokers, "-P", "-t", "kcat-t", "-X", "enable.idempotence=true"], "three\n")
    expect(await consume("read_committed")).toBe("one\ntwo\nthree\n")
    expect(await consume("read_uncommitted")).toBe("one\ntwo\naborted\nthree\n")
    // A kcat group consumer commits its offsets and the next one resumes after them.
    const group = () => kcat(["-b", broker.brokers, "-C", "-G", "kcat-g", "-X", "auto.offset.reset=earliest", "-e", "-f", "%s\n", "kcat-t"])
    expect(await group()).toBe("one\ntwo\nthree\n")
    await kcat(["-b", broker.brokers, "-P", "-t", "kcat-t"], "four\n")
    expect(await group()).toBe("four\n")
  })
})

describe.skipIf(nodeOnly)("Kafka test broker process", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "kafka-broker-"))
  let child: ChildProcess | undefined
  afterAll(() => {
    child?.kill("SIGKILL")
    rmSync(dataDir, { recursive: true, force: true })
  })

  const launch = (port = 0): Promise<string> =>
    new Promise((resolve, reject) => {
      child = spawn(process.execPath, [
        join(import.meta.dirname, "kafka-broker/main.ts"),
        ...["--port", String(port), "--data-dir", dataDir, "--transaction-timeout-ms", "3000"]
      ], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      child.stdout!.on("data", (chunk: Buffer) => {
        const m = /PORT (\d+)/.exec(chunk.toString())
        if (m) resolve(`127.0.0.1:${m[1]}`)
      })
      child.once("exit", (code) => reject(new Error(`broker exited with ${code}`)))
    })

  const kill = async () => {
    const exited = new Promise((r) => child!.once("exit", r))
    child!.kill("SIGKILL")
    await exited
  }

  it("keeps records, committed offsets and transaction outcomes across SIGKILL and restart", async () => {
    const brokers = await launch()
    let kafka = client(brokers)
    const producer = kafka.producer({ transactionalId: "restart-p", idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    await producer.send({ topic: "restart-t", messages: [{ value: "r1" }, { value: "r2" }] })
    const aborted = await producer.transaction()
    await aborted.send({ topic: "restart-t", messages: [{ value: "aborted" }] })
    await aborted.abort()
    const committed = await producer.transaction()
    await committed.send({ topic: "restart-t", messages: [{ value: "r3" }] })
    await committed.commit()
    await producer.disconnect()
    // A transaction still open at the kill: after the restart it stays invisible and its timeout aborts it.
    const lingering = kafka.producer({ transactionalId: "restart-open", idempotent: true, maxInFlightRequests: 1 })
    await lingering.connect()
    const open = await lingering.transaction()
    await open.send({ topic: "restart-t", messages: [{ value: "open" }] })
    const admin = kafka.admin()
    await admin.connect()
    await admin.setOffsets({ groupId: "restart-g", topic: "restart-t", partitions: [{ partition: 0, offset: "2" }] })
    await admin.disconnect()

    await kill()
    await lingering.disconnect()
    // As if killed in the middle of a journal write.
    appendFileSync(join(dataDir, "journal.jsonl"), '{"k":"batch","topic":"restart-t","partition":0,"by')
    kafka = client(await launch(Number(brokers.split(":")[1])))
    const later = kafka.producer({ transactionalId: "restart-p", idempotent: true, maxInFlightRequests: 1 })
    await later.connect()
    const txn = await later.transaction()
    await txn.send({ topic: "restart-t", messages: [{ value: "r4" }] })
    await txn.commit()
    await later.disconnect()
    await expect.poll(() => readAll(kafka, "restart-t", false, 500), { timeout: 10_000 }).toEqual(["r1", "r2", "r3", "r4"])
    expect(await readAll(kafka, "restart-t", true, 500)).toEqual(["aborted", "open", "r1", "r2", "r3", "r4"])
    // What the restarted broker journaled after the torn line survives the next kill.
    await kill()
    kafka = client(await launch())
    expect(await readAll(kafka, "restart-t", false, 500)).toEqual(["r1", "r2", "r3", "r4"])
    const after = kafka.admin()
    await after.connect()
    const offsets = await after.fetchOffsets({ groupId: "restart-g", topics: ["restart-t"] })
    expect(offsets[0]!.partitions).toEqual([{ partition: 0, offset: "2", metadata: null }])
    await after.disconnect()
  })
})
