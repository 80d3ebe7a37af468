/**
 * effect/cluster's runner traffic (shard messages and health pings, effect/rpc
 * over TCP) with the cluster secret checked on every connection: the links'
 * handshake (`link/Guard.ts`) runs first on each socket, and only then do RPC
 * bytes flow either way. A peer that cannot prove the secret is refused and
 * logged. This is the engine's `NodeClusterSocket` layer with its two socket
 * ends guarded.
 */
import { NodeSocket, NodeSocketServer } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { RunnerHealth, Runners, ShardingConfig, SocketRunner } from "effect/cluster"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket, SocketServer } from "effect/socket"
import * as Auth from "../link/Auth.ts"
import { guard, guardedHandler } from "../link/Guard.ts"

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
            Effect.provideService(Socket.Socket, guard(socket, "connector", key, "runner")),
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
      run: (handler) => server.run(guardedHandler(handler, key, "runner"))
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
