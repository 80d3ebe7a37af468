/**
 * The one place in this package that knows how TCP sockets are made. Bun and
 * Deno implement the `node:net` APIs that `@effect/platform-node` builds on,
 * so these serve all three runtimes; a runtime-specific implementation can
 * replace them here without touching the link.
 */
import { NodeSocket, NodeSocketServer } from "@effect/platform-node"
import { Effect, Option, type Scope } from "effect"
import type { Socket, SocketServer } from "effect/socket"

/** A TCP connection to `host:port`; it opens when its reader is acquired. */
export const connect = (host: string, port: number, openTimeoutMs: number): Effect.Effect<Socket.Socket> =>
  // noDelay: credit frames are tiny and the sender waits for them (no Nagle delay).
  NodeSocket.makeNet({ host, port, noDelay: true, openTimeout: openTimeoutMs })

export interface Server {
  /** The bound port (the one chosen by the system when 0 was asked). */
  readonly port: number
  readonly address: SocketServer.SocketServer["Service"]["address"]
  /** Handles each connection in its own fiber (with the peer's address, for logs); runs until interrupted. */
  readonly run: <R>(
    handler: (socket: Socket.Socket, peer: string) => Effect.Effect<void, never, R>
  ) => Effect.Effect<never, SocketServer.SocketServerError, R>
}

/** A TCP server bound to `host:port`, closed with the scope. */
export const listen = (host: string, port: number): Effect.Effect<Server, SocketServer.SocketServerError, Scope.Scope> =>
  Effect.map(NodeSocketServer.make({ host, port, noDelay: true }), (server) => ({
    port: server.address._tag === "UnixPathAddress" ? 0 : server.address.port,
    address: server.address,
    run: (handler) =>
      server.run((socket) =>
        Effect.flatMap(Effect.serviceOption(NodeSocket.NetSocket), (conn) =>
          handler(
            socket,
            Option.match(conn, {
              onNone: () => "unknown peer",
              onSome: (c) => `${c.remoteAddress}:${c.remotePort}`
            })
          ))
      )
  }))
