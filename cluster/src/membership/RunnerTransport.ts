/**
 * effect/cluster's runner traffic (shard messages and health pings, effect/rpc
 * over TCP) with the cluster secret checked on every connection: the links'
 * handshake (`link/Auth.ts`) runs first on each socket, and only then do RPC
 * bytes flow either way. A peer that cannot prove the secret is refused and
 * logged. This is the engine's `NodeClusterSocket` layer with its two socket
 * ends guarded.
 */
import { NodeSocket, NodeSocketServer } from "@effect/platform-node"
import { Cause, Effect, Latch, Layer, Option } from "effect"
import { RunnerHealth, Runners, ShardingConfig, SocketRunner } from "effect/cluster"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket, SocketServer } from "effect/socket"
import * as Auth from "../link/Auth.ts"
import { LinkAuthError } from "../link/Errors.ts"
import { FrameDecoder } from "../link/Frame.ts"

const HANDSHAKE_MS = 5000

/**
 * `socket`, opened only after the handshake: each connection its reader opens
 * is authenticated first, and writes wait until it is.
 */
const guard = (socket: Socket.Socket, role: "connector" | "listener", key: Auth.SecretKey): Socket.Socket => {
  const authenticated = Latch.makeUnsafe(false)
  return Socket.make({
    reader: Effect.gen(function*() {
      const writer = yield* socket.writer
      const pull = yield* Socket.readerBytes(socket)
      const wire = { pull, write: writer.writeAll, destroy: Effect.ignore(writer.write(new Socket.CloseEvent(1000))), decoder: new FrameDecoder(Auth.HANDSHAKE_MAX_FRAME) }
      yield* (role === "connector" ? Auth.connector(wire, key, 0, HANDSHAKE_MS) : Auth.listener(wire, key, 0, HANDSHAKE_MS)).pipe(
        Effect.tapError((error) =>
          Effect.andThen(
            Effect.logWarning(`runner: ${role === "listener" ? "refused a connection" : "could not connect"}: ${error.message}`),
            role === "listener" ? Effect.andThen(Auth.reject(wire, "authentication failed"), wire.destroy) : wire.destroy
          )
        ),
        Effect.mapError((error) =>
          new Socket.SocketError({
            reason: new Socket.SocketOpenError({ kind: "Unknown", cause: error._tag === "LinkAuthError" ? error : new LinkAuthError({ reason: error.message }) })
          })
        )
      )
      // Bytes that came with the last handshake frame are the RPC protocol's first.
      const rest = wire.decoder.rest()
      authenticated.openUnsafe()
      yield* Effect.addFinalizer(() => Effect.sync(() => authenticated.closeUnsafe()))
      const [first, ...others] = rest
      let pending = first === undefined ? undefined : [first, ...others] as const
      return {
        pull: Effect.suspend(() => {
          if (pending === undefined) return pull
          const chunks = pending
          pending = undefined
          return Effect.succeed(chunks)
        }),
        upgrade: () => Effect.fail(new Socket.SocketError({ reason: new Socket.SocketUpgradeError({ cause: new Error("not supported on a guarded socket") }) }))
      }
    }),
    writer: Effect.map(socket.writer, (writer): Socket.Writer => ({
      // Closing never waits: a connection that failed its handshake must still close.
      write: (chunk) => Socket.isCloseEvent(chunk) ? writer.write(chunk) : authenticated.whenOpen(writer.write(chunk)),
      writeAll: (chunks) => authenticated.whenOpen(writer.writeAll(chunks))
    }))
  })
}

/** The guard's failure: the peer did not prove the secret (an accepted socket cannot fail to open otherwise). */
const isRefusal = (error: unknown): boolean =>
  Socket.isSocketError(error) && error.reason._tag === "SocketOpenError" && error.reason.cause instanceof LinkAuthError

/** Connections to other runners, each proving the secret before its first request. */
const clientProtocol = (key: Auth.SecretKey) =>
  Layer.effect(Runners.RpcClientProtocol)(Effect.gen(function*() {
    const serialization = yield* RpcSerialization.RpcSerialization
    return {
      codecFor: serialization.codecFor,
      make: (address) =>
        Effect.gen(function*() {
          const socket = yield* NodeSocket.makeNet({ openTimeout: 1000, timeout: 5500, host: address.host, port: address.port })
          return yield* RpcClient.makeProtocolSocket().pipe(
            Effect.provideService(Socket.Socket, guard(socket, "connector", key)),
            Effect.provideService(RpcSerialization.RpcSerialization, serialization)
          )
        }).pipe(Effect.orDie)
    }
  }))

/** The runner's server, refusing connections that cannot prove the secret. */
const socketServer = (key: Auth.SecretKey, listen: { readonly host: string; readonly port: number }) =>
  Layer.effect(SocketServer.SocketServer)(Effect.gen(function*() {
    const server = yield* SocketServer.SocketServer
    return SocketServer.SocketServer.of({
      address: server.address,
      // A refused connection is logged once, by the guard, and ends there.
      run: (handler) =>
        server.run((socket) =>
          Effect.catchCause(handler(guard(socket, "listener", key)), (cause) => isRefusal(Cause.squash(cause)) ? Effect.void : Effect.failCause(cause))
        )
    })
  })).pipe(Layer.provide(NodeSocketServer.layer(listen)))

/**
 * Sharding over guarded sockets, as `NodeClusterSocket.layer` with
 * bring-your-own storage: the runner's server, its clients to the other
 * runners and its health pings all prove `secret`.
 */
export const layer = (secret: string, shardingConfig: Partial<ShardingConfig.ShardingConfig["Service"]>) =>
  Effect.gen(function*() {
    const key = yield* Auth.importSecret(secret)
    const config = yield* ShardingConfig.ShardingConfig
    const address = Option.getOrThrow(Option.orElse(config.runnerListenAddress, () => config.runnerAddress))
    const client = clientProtocol(key)
    return SocketRunner.layer.pipe(
      Layer.provide([socketServer(key, address), client]),
      Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(client)))
    )
  }).pipe(
    Layer.unwrap,
    Layer.provide(ShardingConfig.layerFromEnv(shardingConfig)),
    Layer.provide(RpcSerialization.layerSchemaBinary())
  )
