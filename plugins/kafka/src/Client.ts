/**
 * The Kafka client as a service: one kafkajs instance, its admin connection
 * and a bare cluster for the raw fetches of the source and the transaction
 * recovery of the sink, all closed with the layer's scope.
 */
import { Context, Data, Effect, Layer } from "effect"
import { type Admin, type ISocketFactory, Kafka, logLevel, type Producer } from "kafkajs"
import * as Net from "node:net"
import * as Internals from "./Internals.ts"

/** A call to the Kafka cluster failed. */
export class KafkaError extends Data.TaggedError("KafkaError")<{
  readonly brokers: string
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    return `Kafka ${this.brokers}: ${this.operation} failed`
  }
}

export interface KafkaClientShape {
  readonly brokers: string
  readonly kafka: Kafka
  readonly admin: Admin
  readonly cluster: Internals.Cluster
  /**
   * An idempotent producer for the connectors' own records (the exactly-once sink's state): it lives
   * as long as the layer, since a job commits its last transactions after its sinks closed.
   */
  readonly producer: Producer
  /** Runs a call to the cluster, failing with a `KafkaError` naming `operation`. */
  readonly call: <A>(operation: string, f: () => Promise<A>) => Effect.Effect<A, KafkaError>
}

/** The connected Kafka client the connectors of this plugin use. */
export class KafkaClient extends Context.Service<KafkaClient, KafkaClientShape>()("@tributary/kafka/KafkaClient") {}

export interface KafkaClientOptions {
  /** Bootstrap servers, `host:port`. */
  readonly brokers: ReadonlyArray<string>
  readonly clientId?: string | undefined
}

/**
 * The sockets of one client, all closed with it. kafkajs's `disconnect` closes the connections it
 * knows of, but a call cut short by an interrupted fiber (a metadata refresh, a coordinator
 * lookup) goes on in the background and may open a connection after that: left open, it would
 * keep the process from exiting. Once closed, a new socket is destroyed at once.
 */
const ownedSockets = () => {
  const open = new Set<Net.Socket>()
  let closed = false
  const factory: ISocketFactory = ({ host, port, onConnect }) => {
    const socket = Net.connect({ host, port }, onConnect)
    // As kafkajs's own factory.
    socket.setKeepAlive(true, 60_000)
    if (closed) socket.destroy()
    else {
      open.add(socket)
      socket.once("close", () => open.delete(socket))
    }
    return socket
  }
  const closeAll = () => {
    closed = true
    for (const socket of open) socket.destroy()
  }
  return { factory, closeAll }
}

/** A client of the cluster at `brokers`, connected for the layer's lifetime. */
export const layer = (options: KafkaClientOptions): Layer.Layer<KafkaClient, KafkaError> =>
  Layer.effect(
    KafkaClient,
    Effect.gen(function*() {
      const brokers = options.brokers.join(",")
      const call = <A>(operation: string, f: () => Promise<A>) =>
        Effect.tryPromise({ try: f, catch: (cause) => new KafkaError({ brokers, operation, cause }) })
      // Closed last (released first-acquired-last): whatever socket the clients still hold then goes too.
      const sockets = yield* Effect.acquireRelease(Effect.sync(ownedSockets), (owned) => Effect.sync(owned.closeAll))
      const kafka = new Kafka({
        brokers: [...options.brokers],
        clientId: options.clientId ?? "tributary",
        logLevel: logLevel.NOTHING,
        socketFactory: sockets.factory
      })
      const admin = kafka.admin()
      yield* Effect.acquireRelease(call("connect", () => admin.connect()), () => Effect.promise(() => admin.disconnect()))
      const cluster = Internals.cluster(kafka, {})
      yield* Effect.acquireRelease(call("connect", () => cluster.connect()), () => Effect.promise(() => cluster.disconnect()))
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
      yield* Effect.acquireRelease(call("connect", () => producer.connect()), () => Effect.promise(() => producer.disconnect()))
      return KafkaClient.of({ brokers, kafka, admin, cluster, producer, call })
    })
  )
