/** A connected socket as frames: the reader, the writer and the frame decoder. */
import type { NonEmptyReadonlyArray } from "effect/Array"
import { Effect, type Scope } from "effect"
import { Socket } from "effect/socket"
import * as Net from "../platform/Net.ts"
import { LinkClosedError, LinkConnectError, LinkProtocolError } from "./Errors.ts"
import { type Frame, FrameDecoder } from "./Frame.ts"

export interface Wire {
  readonly pull: Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError>
  readonly write: (chunks: NonEmptyReadonlyArray<Uint8Array>) => Effect.Effect<void, Socket.SocketError>
  /** Closes the connection at once (on a refused peer or a protocol error). */
  readonly destroy: Effect.Effect<void>
  readonly decoder: FrameDecoder
}

/** Opens the socket (a client connects here) for the current scope; the scope's end closes it. */
export const open = (socket: Socket.Socket, maxFrame: number): Effect.Effect<Wire, Socket.SocketError, Scope.Scope> =>
  Effect.gen(function*() {
    const pull = yield* Socket.readerBytes(socket)
    const writer = yield* socket.writer
    return {
      pull,
      write: writer.writeAll,
      destroy: Effect.ignore(writer.write(new Socket.CloseEvent(1000))),
      decoder: new FrameDecoder(maxFrame)
    }
  })

/** Connects to `host:port` and opens the connection as a wire, for the current scope. */
export const connect = (host: string, port: number, maxFrame: number, timeoutMs: number): Effect.Effect<Wire, LinkConnectError, Scope.Scope> =>
  Effect.flatMap(Net.connect(host, port, timeoutMs), (socket) =>
    Effect.mapError(open(socket, maxFrame), (cause) => new LinkConnectError({ host, port, cause: cause.reason })))

/** Maps a socket failure to the link's error. */
export const closed = (cause: Socket.SocketError): LinkClosedError =>
  cause.reason._tag === "SocketCloseError"
    ? new LinkClosedError({ reason: "the peer closed the connection" })
    : new LinkClosedError({ reason: "the connection failed", cause: cause.reason })

/** The next frame already received, if any; an impossible length is a protocol error. */
export const nextFrame = (wire: Wire): Frame | LinkProtocolError | undefined => {
  try {
    return wire.decoder.next()
  } catch (error) {
    return error instanceof LinkProtocolError ? error : new LinkProtocolError({ reason: String(error) })
  }
}

/** The next frame, reading as much as needed (the handshake reads frames one by one). */
export const readFrame = (wire: Wire): Effect.Effect<Frame, LinkClosedError | LinkProtocolError> =>
  Effect.suspend(function loop(): Effect.Effect<Frame, LinkClosedError | LinkProtocolError> {
    const frame = nextFrame(wire)
    if (frame instanceof LinkProtocolError) return Effect.fail(frame)
    if (frame) return Effect.succeed(frame)
    return Effect.flatMap(Effect.mapError(wire.pull, closed), (chunks) => {
      for (const chunk of chunks) wire.decoder.push(chunk)
      return Effect.suspend(loop)
    })
  })
