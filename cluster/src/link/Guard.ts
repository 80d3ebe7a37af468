/**
 * The links' handshake (`Auth.ts`) in front of another protocol on a socket:
 * effect/rpc, for the engine's runner traffic and the coordinator's control
 * messages. Each connection the guarded socket's reader opens proves the
 * cluster secret first (or checks the peer's proof); writes wait until it has,
 * and the bytes after the handshake are the protocol's first.
 */
import { Cause, Effect, Latch } from "effect"
import { Socket } from "effect/socket"
import * as Auth from "./Auth.ts"
import { LinkAuthError } from "./Errors.ts"
import * as Wire from "./Wire.ts"

const HANDSHAKE_MS = 5000

/** `socket` behind the handshake; `label` names the protocol in the log line of a refusal. */
export const guard = (socket: Socket.Socket, role: "connector" | "listener", key: Auth.SecretKey, label: string, peer = "a peer"): Socket.Socket => {
  const authenticated = Latch.makeUnsafe(false)
  return Socket.make({
    reader: Effect.gen(function*() {
      const wire = yield* Wire.open(socket, Auth.HANDSHAKE_MAX_FRAME)
      yield* (role === "connector" ? Auth.connector(wire, key, 0, HANDSHAKE_MS) : Auth.listener(wire, key, 0, HANDSHAKE_MS)).pipe(
        Effect.tapError((error) =>
          Effect.andThen(
            Effect.logWarning(`${label}: ${role === "listener" ? `refused a connection from ${peer}` : "could not connect"}: ${error.message}`),
            role === "listener" ? Effect.andThen(Auth.reject(wire, "authentication failed"), wire.destroy) : wire.destroy
          )
        ),
        Effect.mapError((error) =>
          new Socket.SocketError({
            reason: new Socket.SocketOpenError({ kind: "Unknown", cause: error._tag === "LinkAuthError" ? error : new LinkAuthError({ reason: error.message }) })
          })
        )
      )
      const rest = wire.decoder.rest()
      authenticated.openUnsafe()
      yield* Effect.addFinalizer(() => Effect.sync(() => authenticated.closeUnsafe()))
      const [first, ...others] = rest
      let pending = first === undefined ? undefined : [first, ...others] as const
      return {
        pull: Effect.suspend(() => {
          if (pending === undefined) return wire.pull
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

/** A server's `handler` for an accepted socket, behind the guard: a refused peer (logged by the guard) just ends there. */
export const guardedHandler = <A, E, R>(
  handler: (socket: Socket.Socket) => Effect.Effect<A, E, R>,
  key: Auth.SecretKey,
  label: string,
  peer?: string
) =>
(socket: Socket.Socket): Effect.Effect<A | void, E, R> =>
  Effect.catchCause(handler(guard(socket, "listener", key, label, peer)), (cause) => isRefusal(Cause.squash(cause)) ? Effect.void : Effect.failCause(cause))
