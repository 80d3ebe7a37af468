/**
 * A data link: record batches and control items between two members over one
 * TCP connection, in both directions, in order. Each direction has a receive
 * window counted in bytes (as in Jet's flow control): the receiver grants the
 * sender `window` bytes at the handshake and gives bytes back (Credit frames)
 * as its consumer takes items, so a slow consumer suspends the sender and
 * neither side buffers more than a window per direction.
 */
import { Deferred, Duration, Effect, Queue, Redacted, type Scope } from "effect"
import * as Net from "../platform/Net.ts"
import * as Auth from "./Auth.ts"
import { LinkAuthError, LinkConnectError, type LinkError, LinkProtocolError } from "./Errors.ts"
import { Fifo, Wakeup } from "./Flow.ts"
import {
  decodeItem,
  encodeFrame,
  encodeItem,
  encodeU32Frame,
  type Frame,
  FrameType,
  HEADER,
  type LinkItem,
  readU32
} from "./Frame.ts"
import * as Wire from "./Wire.ts"

export { isBatch, type LinkControl, type LinkItem } from "./Frame.ts"

/** Counters of one link, live (read them at any time). Bytes are wire bytes, headers included. */
export interface LinkStats {
  /** Batch and control frames sent / received, and their bytes. */
  framesSent: number
  bytesSent: number
  framesReceived: number
  bytesReceived: number
  /** This side's receive window: the most bytes the peer may have in flight to us. */
  window: number
  /** The peer's receive window: the most bytes we may have in flight to it. */
  peerWindow: number
  /** Bytes sent and not yet given back by the peer, and the most there ever were. */
  inFlight: number
  maxInFlight: number
  /** Bytes received and not yet taken by `receive`, and the most there ever were. */
  buffered: number
  maxBuffered: number
  /** How many times `send` suspended for lack of credit. */
  creditWaits: number
}

export interface Link {
  /** Sends a batch or a control item; suspends while the peer's window is full. */
  readonly send: (item: LinkItem) => Effect.Effect<void, LinkError>
  /** The next item from the peer, in order; suspends while none is there. Items received before a failure are delivered first. */
  readonly receive: Effect.Effect<LinkItem, LinkError>
  /** Fails when the link fails (the peer closed, died, or broke the protocol): an early hint for a supervisor. */
  readonly failed: Effect.Effect<never, LinkError>
  readonly stats: Readonly<LinkStats>
}

export interface LinkOptions {
  /** The cluster secret, shared by all members. */
  readonly secret: string | Redacted.Redacted<string>
  /** This side's receive window in bytes (default 1 MiB). */
  readonly window?: number | undefined
  /** The largest frame accepted from the peer (default 64 MiB). */
  readonly maxFrame?: number | undefined
  /** Time allowed to connect and authenticate (default 5 s). */
  readonly handshakeTimeout?: Duration.Input | undefined
}

export interface ConnectOptions extends LinkOptions {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  readonly port: number
}

export interface ListenOptions extends LinkOptions {
  /** Default 127.0.0.1: members reach each other explicitly, never by accident. */
  readonly host?: string | undefined
  /** Default 0: any free port (see `Listener.port`). */
  readonly port?: number | undefined
}

export interface Listener {
  readonly host: string
  /** The bound port. */
  readonly port: number
  /** The next authenticated link; it stays open until the caller's scope closes. */
  readonly accept: Effect.Effect<Link, never, Scope.Scope>
}

const DEFAULT_WINDOW = 1 << 20
const DEFAULT_MAX_FRAME = 64 << 20
// Longest wait, on close, for queued frames to reach the socket (a peer that stopped reading).
const FLUSH_TIMEOUT = Duration.seconds(2)

const settings = (options: LinkOptions) => {
  const window = options.window ?? DEFAULT_WINDOW
  if (!Number.isInteger(window) || window < 1024 || window > 0x7fffffff) {
    throw new RangeError(`link window must be an integer between 1024 and 2^31-1 bytes, got ${window}`)
  }
  return {
    window,
    maxFrame: Math.max(options.maxFrame ?? DEFAULT_MAX_FRAME, window),
    timeoutMs: Duration.toMillis(Duration.fromInputUnsafe(options.handshakeTimeout ?? Duration.seconds(5))),
    secret: Redacted.isRedacted(options.secret) ? Redacted.value(options.secret) : options.secret
  }
}

/** Runs the link over an authenticated wire, for the current scope. */
const make = (wire: Wire.Wire, window: number, peerWindow: number, maxFrame: number) =>
  Effect.gen(function*() {
    const stats: LinkStats = {
      framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0, window, peerWindow,
      inFlight: 0, maxInFlight: 0, buffered: 0, maxBuffered: 0, creditWaits: 0
    }
    let failure: LinkError | undefined
    const failed = yield* Deferred.make<never, LinkError>()
    const outbox = new Fifo<Uint8Array>()
    const inbox = new Fifo<Frame>()
    const writable = new Wakeup() // the writer fiber: frames queued
    const sendable = new Wakeup() // senders: credit came back
    const receivable = new Wakeup() // receivers: an item arrived
    let credit = peerWindow // bytes we may still send
    let available = window // bytes the peer may still send, as we granted them
    let unacked = 0 // bytes taken by our consumer, not yet given back
    let writing = false
    const ackEvery = Math.max(HEADER, window >> 3)

    const fail = (error: LinkError): void => {
      if (failure) return
      failure = error
      Deferred.doneUnsafe(failed, Effect.fail(error))
      writable.notify()
      sendable.notify()
      receivable.notify()
    }
    const enqueue = (...chunks: ReadonlyArray<Uint8Array>) => {
      for (const chunk of chunks) outbox.push(chunk)
      writable.notify()
    }

    const onFrame = (frame: Frame): LinkError | undefined => {
      switch (frame.type) {
        case FrameType.Batch:
        case FrameType.Control: {
          // A peer past its credit could grow our memory without bound: cut it off.
          if (available < frame.size && available !== window) {
            return new LinkProtocolError({ reason: `the peer sent ${frame.size} bytes with ${available} bytes of credit` })
          }
          available -= frame.size
          inbox.push(frame)
          stats.framesReceived++
          stats.bytesReceived += frame.size
          stats.buffered += frame.size
          if (stats.buffered > stats.maxBuffered) stats.maxBuffered = stats.buffered
          receivable.notify()
          return undefined
        }
        case FrameType.Credit: {
          if (frame.body.length !== 4) return new LinkProtocolError({ reason: "malformed credit frame" })
          credit += readU32(frame.body, 0)
          if (credit > peerWindow) return new LinkProtocolError({ reason: "the peer gave back more credit than was used" })
          stats.inFlight = peerWindow - credit
          sendable.notify()
          return undefined
        }
        default:
          return new LinkProtocolError({ reason: `unexpected frame type ${frame.type}` })
      }
    }

    // Reads all the time (the window bounds what it can buffer), so credit frames are never stuck behind data.
    const reader = Effect.gen(function*() {
      while (failure === undefined) {
        const error = yield* Effect.matchEffect(wire.pull, {
          onFailure: (cause) => Effect.succeed<LinkError>(Wire.closed(cause)),
          onSuccess: (chunks) =>
            Effect.sync(() => {
              for (const chunk of chunks) wire.decoder.push(chunk)
              for (let frame = Wire.nextFrame(wire); frame; frame = Wire.nextFrame(wire)) {
                const error = frame instanceof LinkProtocolError ? frame : onFrame(frame)
                if (error) return error
              }
              return undefined
            })
        })
        if (error) {
          fail(error)
          if (error._tag === "LinkProtocolError") yield* wire.destroy
        }
      }
    })

    // The one fiber that writes, so frames never interleave; it writes all queued frames at once.
    const writer = Effect.gen(function*() {
      while (true) {
        yield* writable.until(() => outbox.size > 0 || failure !== undefined)
        if (failure !== undefined) return
        const chunks = outbox.drain()
        writing = true
        const result = yield* Effect.result(wire.write(chunks as [Uint8Array, ...Array<Uint8Array>]))
        writing = false
        writable.notify()
        if (result._tag === "Failure") return fail(Wire.closed(result.failure))
      }
    })

    wire.decoder.maxLength = maxFrame + 1
    yield* Effect.forkScoped(reader)
    yield* Effect.forkScoped(writer)
    // Runs before the fibers are interrupted: frames already sent (a final Done) reach the socket.
    yield* Effect.addFinalizer(() =>
      Effect.ignore(Effect.timeout(writable.until(() => (outbox.size === 0 && !writing) || failure !== undefined), FLUSH_TIMEOUT))
    )

    const acquire = (size: number): Effect.Effect<void, LinkError> =>
      Effect.suspend(() => {
        if (failure) return Effect.fail(failure)
        // A frame larger than the whole window goes alone, when nothing else is in flight.
        if (credit >= size || credit === peerWindow) {
          credit -= size
          stats.inFlight = peerWindow - credit
          if (stats.inFlight > stats.maxInFlight) stats.maxInFlight = stats.inFlight
          return Effect.void
        }
        return Effect.andThen(
          sendable.until(() => failure !== undefined || credit >= size || credit === peerWindow, () => stats.creditWaits++),
          acquire(size)
        )
      })

    const send = (item: LinkItem): Effect.Effect<void, LinkError> =>
      Effect.suspend(() => {
        if (failure) return Effect.fail(failure)
        const { body, type } = encodeItem(item)
        const size = HEADER + body.length
        return Effect.map(acquire(size), () => {
          enqueue(...encodeFrame(type, body))
          stats.framesSent++
          stats.bytesSent += size
        })
      })

    const take = (frame: Frame): Effect.Effect<LinkItem, LinkError> => {
      stats.buffered -= frame.size
      unacked += frame.size
      // Give credit back in slices, and all of it once we have caught up.
      if (unacked >= ackEvery || inbox.size === 0) {
        enqueue(encodeU32Frame(FrameType.Credit, unacked))
        available += unacked
        unacked = 0
      }
      try {
        return Effect.succeed(decodeItem(frame))
      } catch (cause) {
        const error = new LinkProtocolError({ reason: `undecodable frame: ${String(cause)}` })
        fail(error)
        return Effect.andThen(wire.destroy, Effect.fail(error))
      }
    }

    const receive: Effect.Effect<LinkItem, LinkError> = Effect.suspend(() => {
      const frame = inbox.shift()
      if (frame) return take(frame)
      if (failure) return Effect.fail(failure)
      return Effect.andThen(receivable.until(() => inbox.size > 0 || failure !== undefined), receive)
    })

    const link: Link = { send, receive, failed: Deferred.await(failed), stats }
    return link
  })

/** Opens a link to the member listening at `host:port`, for the current scope. */
export const connect = (
  options: ConnectOptions
): Effect.Effect<Link, LinkConnectError | LinkAuthError, Scope.Scope> =>
  Effect.gen(function*() {
    const { maxFrame, secret, timeoutMs, window } = settings(options)
    const host = options.host ?? "127.0.0.1"
    const key = yield* Auth.importSecret(secret)
    const wire = yield* Wire.connect(host, options.port, Auth.HANDSHAKE_MAX_FRAME, timeoutMs)
    const peerWindow = yield* Effect.tapError(Auth.connector(wire, key, window, timeoutMs), () => wire.destroy)
    return yield* make(wire, window, peerWindow, maxFrame)
  })

/**
 * Listens for members, for the current scope. Each connection must pass the
 * handshake within the timeout; a peer that does not is logged as a warning
 * and closed before anything it sends is read as data.
 */
export const listen = (
  options: ListenOptions
): Effect.Effect<Listener, LinkConnectError | LinkAuthError, Scope.Scope> =>
  Effect.gen(function*() {
    const { maxFrame, secret, timeoutMs, window } = settings(options)
    const host = options.host ?? "127.0.0.1"
    const key = yield* Auth.importSecret(secret)
    const server = yield* Effect.mapError(
      Net.listen(host, options.port ?? 0),
      (cause) => new LinkConnectError({ host, port: options.port ?? 0, cause: cause.reason })
    )
    const accepted = yield* Queue.unbounded<{ readonly link: Link; readonly release: Deferred.Deferred<void> }>()

    const handle = (socket: Parameters<Parameters<Net.Server["run"]>[0]>[0], peer: string) =>
      Effect.scoped(Effect.gen(function*() {
        const wire = yield* Wire.open(socket, Auth.HANDSHAKE_MAX_FRAME)
        const peerWindow = yield* Auth.listener(wire, key, window, timeoutMs).pipe(
          Effect.tapError((error) =>
            Effect.andThen(
              Effect.logWarning(`link: refused a connection from ${peer}: ${error.message}`),
              Effect.andThen(Auth.reject(wire, "authentication failed"), wire.destroy)
            )
          )
        )
        const link = yield* make(wire, window, peerWindow, maxFrame)
        const release = yield* Deferred.make<void>()
        yield* Queue.offer(accepted, { link, release })
        // The connection lives until the accepting scope releases it (or the listener closes).
        yield* Deferred.await(release)
      })).pipe(Effect.ignore)

    yield* Effect.forkScoped(Effect.ignore(server.run(handle)))
    return {
      host,
      port: server.port,
      accept: Effect.gen(function*() {
        const { link, release } = yield* Queue.take(accepted)
        yield* Effect.addFinalizer(() => Deferred.succeed(release, undefined))
        return link
      })
    }
  })
