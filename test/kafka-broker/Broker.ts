/**
 * An in-memory, wire-compatible Kafka broker for tests: one node (id 0) that is also the group and transaction
 * coordinator. Requests on a connection are served one at a time, in order, as Kafka does. With `dataDir` every
 * change is journaled, so a broker restarted on the same directory keeps topics, records, offsets and
 * transactions.
 */
import * as Net from "node:net"
import { Reader, Writer } from "./Codec.ts"
import type { Api, Context } from "./Context.ts"
import { ErrorCode } from "./Errors.ts"
import type { Group } from "./Groups.ts"
import { Store } from "./Store.ts"
import { Transactions } from "./Transactions.ts"
import { adminApis, createTopic } from "./apis/Admin.ts"
import { fetchApis } from "./apis/Fetch.ts"
import { groupApis } from "./apis/Groups.ts"
import { produceApis } from "./apis/Produce.ts"
import { transactionApis } from "./apis/Transactions.ts"

/** Broker options. */
export interface BrokerOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  readonly port?: number
  /** Directory for the journal; without it the broker is memory-only. */
  readonly dataDir?: string
  /** Upper bound on a producer's transaction timeout (Kafka's transaction.max.timeout.ms). */
  readonly transactionTimeoutMs?: number
  /** Create unknown topics named in Metadata requests (default true, as Kafka). */
  readonly autoCreateTopics?: boolean
  /** Partition count of auto-created topics (default 1). */
  readonly defaultPartitions?: number
}

/** A running broker. */
export interface Broker {
  /** The port it listens on (127.0.0.1). */
  readonly port: number
  /** `host:port`, for a client's bootstrap list. */
  readonly brokers: string
  /** Creates a topic; throws if it exists or `partitions` < 1. */
  createTopic(name: string, partitions: number): void
  /** Each partition's high watermark (next offset), `[]` for an unknown topic. */
  endOffsets(topic: string): Array<number>
  /** A group's committed offset for a partition. */
  committed(group: string, topic: string, partition: number): number | undefined
  /** Transactional ids whose transaction is open (not yet committed, aborted or timed out). */
  openTransactions(): Array<string>
  /** Client connections open now. */
  connections(): number
  /** Closes every connection and the listener, and the journal. */
  stop(): Promise<void>
}

const APIS: ReadonlyArray<Api> = [...adminApis, ...produceApis, ...fetchApis, ...groupApis, ...transactionApis].sort(
  (a, b) => a.key - b.key
)
const API_VERSIONS = 18
const debug = process.env["KAFKA_BROKER_DEBUG"] !== undefined

const frame = (correlationId: number, body: Writer): Buffer => {
  const b = body.toBuffer()
  const out = Buffer.allocUnsafe(8 + b.length)
  out.writeInt32BE(4 + b.length, 0)
  out.writeInt32BE(correlationId, 4)
  out.set(b, 8)
  return out
}

const serve = async (ctx: Context, message: Buffer, clientHost: string): Promise<Buffer | null> => {
  const r = new Reader(message)
  const key = r.int16()
  const version = r.int16()
  const correlationId = r.int32()
  const clientId = r.nullableString() ?? ""
  const api = APIS.find((a) => a.key === key)
  if (api === undefined) throw new Error(`unsupported API key ${key}`)
  if (version < api.min || version > api.max) {
    if (key !== API_VERSIONS) throw new Error(`unsupported ${api.name} version ${version}`)
    // Clients retry ApiVersions at a version this v0-framed answer lists.
    const w = new Writer().int16(ErrorCode.UNSUPPORTED_VERSION).array(APIS, (w, a) => w.int16(a.key).int16(a.min).int16(a.max))
    return frame(correlationId, w)
  }
  if (key === API_VERSIONS && version >= 3) r.skipTaggedFields()
  const body = await api.handle(ctx, { version, body: r, clientId, clientHost })
  if (debug) console.error(`[kafka-broker] ${api.name} v${version} from ${clientId}`)
  return body === null ? null : frame(correlationId, body)
}

const connection = (ctx: Context, socket: Net.Socket): void => {
  let pending = Buffer.alloc(0)
  let queue = Promise.resolve()
  socket.setNoDelay(true)
  socket.on("error", () => socket.destroy())
  socket.on("data", (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const message = pending.subarray(4, 4 + pending.readInt32BE(0))
      pending = pending.subarray(4 + message.length)
      queue = queue.then(async () => {
        if (socket.destroyed) return
        try {
          const out = await serve(ctx, message, socket.remoteAddress ?? "")
          if (out !== null && !socket.destroyed) socket.write(out)
        } catch (e) {
          console.error(`[kafka-broker] closing connection: ${e instanceof Error ? e.message : String(e)}`)
          socket.destroy()
        }
      })
    }
  })
}

/** Starts a broker on 127.0.0.1. */
export const start = async (options: BrokerOptions = {}): Promise<Broker> => {
  const store = new Store(options.dataDir)
  const txns = new Transactions(store, options.transactionTimeoutMs ?? 900_000)
  for (const event of store.journal.replay()) {
    store.apply(event, true)
    txns.replay(event)
  }
  const groups = new Map<string, Group>()
  const ctx: Context = {
    store,
    txns,
    groups,
    host: "127.0.0.1",
    port: 0,
    autoCreateTopics: options.autoCreateTopics ?? true,
    defaultPartitions: options.defaultPartitions ?? 1,
    apis: APIS
  }
  const sockets = new Set<Net.Socket>()
  const server = Net.createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    connection(ctx, socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, ctx.host, resolve)
  })
  ctx.port = (server.address() as Net.AddressInfo).port
  return {
    port: ctx.port,
    brokers: `${ctx.host}:${ctx.port}`,
    createTopic: (name, partitions) => {
      const error = createTopic(ctx, name, partitions)
      if (error !== ErrorCode.NONE) throw new Error(`cannot create topic ${name}: error ${error}`)
    },
    endOffsets: (topic) => (store.topics.get(topic) ?? []).map((p) => p.highWatermark),
    committed: (group, topic, partition) => store.committed(group, topic, partition)?.offset,
    openTransactions: () => txns.openIds(),
    connections: () => sockets.size,
    stop: async () => {
      txns.close()
      for (const g of groups.values()) g.close()
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      store.journal.close()
    }
  }
}
