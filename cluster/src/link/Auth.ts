/**
 * Mutual challenge–response over the cluster secret, before any data: each
 * side sends a random nonce and proves the secret with an HMAC-SHA256 over
 * both nonces and its role (so a proof cannot be replayed or reflected). The
 * listener checks the connector's proof first and only then proves its own, so
 * an unauthenticated peer gets nothing computed with the secret. WebCrypto
 * (`crypto.subtle`) is the same on Node, Bun and Deno.
 */
import { Duration, Effect } from "effect"
import { LinkAuthError, LinkProtocolError } from "./Errors.ts"
import { encodeFrame, type Frame, FrameType, readU32 } from "./Frame.ts"
import { readFrame, type Wire } from "./Wire.ts"

const MAGIC = [0x54, 0x52, 0x42, 0x4c] // "TRBL"
const VERSION = 1
const NONCE = 32
const MAC = 32
/** Largest frame accepted before authentication: enough for any handshake frame. */
export const HANDSHAKE_MAX_FRAME = 256

/** An HMAC key (WebCrypto's `CryptoKey`, named without the DOM library). */
export type SecretKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>

const text = new TextEncoder()
const CONNECTOR = text.encode("tributary-link/1 connector")
const LISTENER = text.encode("tributary-link/1 listener")

/** The secret as an HMAC key (never extractable). */
export const importSecret = (secret: string): Effect.Effect<SecretKey, LinkAuthError> =>
  secret.length === 0
    ? Effect.fail(new LinkAuthError({ reason: "the cluster secret is empty" }))
    : Effect.promise(() =>
      crypto.subtle.importKey("raw", text.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"])
    )

const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

const sign = (key: SecretKey, role: Uint8Array, first: Uint8Array, second: Uint8Array) =>
  Effect.map(
    Effect.promise(() => crypto.subtle.sign("HMAC", key, concat(role, first, second))),
    (mac) => new Uint8Array(mac)
  )

// `verify` compares in constant time.
const verify = (key: SecretKey, role: Uint8Array, first: Uint8Array, second: Uint8Array, mac: Uint8Array) =>
  Effect.promise(() => crypto.subtle.verify("HMAC", key, concat(mac), concat(role, first, second)))

const nonce = () => crypto.getRandomValues(new Uint8Array(NONCE))

const u32 = (value: number) => {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, value)
  return bytes
}

const expect = (frame: Frame, type: number, length: number): Effect.Effect<Frame, LinkAuthError | LinkProtocolError> => {
  if (frame.type === FrameType.Reject) {
    return Effect.fail(new LinkAuthError({ reason: `refused by the peer: ${new TextDecoder().decode(frame.body)}` }))
  }
  if (frame.type !== type || frame.body.length !== length) {
    return Effect.fail(new LinkProtocolError({ reason: `expected handshake frame ${type}, got ${frame.type} (${frame.body.length} bytes)` }))
  }
  return Effect.succeed(frame)
}

const within = (timeoutMs: number) => <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | LinkAuthError> =>
  Effect.timeoutOrElse(effect, {
    duration: Duration.millis(timeoutMs),
    orElse: () => Effect.fail(new LinkAuthError({ reason: `no handshake within ${timeoutMs} ms` }))
  })

/**
 * The connecting side: answers the listener's challenge, then checks the
 * listener's proof. Returns the listener's receive window. Any failure,
 * including the connection closing mid-handshake, is a `LinkAuthError`.
 */
export const connector = (wire: Wire, key: SecretKey, window: number, timeoutMs: number) =>
  Effect.gen(function*() {
    const hello = yield* expect(yield* readFrame(wire), FrameType.Hello, MAGIC.length + 1 + NONCE)
    if (MAGIC.some((b, i) => hello.body[i] !== b) || hello.body[MAGIC.length] !== VERSION) {
      return yield* new LinkAuthError({ reason: "the peer is not a tributary link of this version" })
    }
    const theirs = hello.body.slice(MAGIC.length + 1)
    const ours = nonce()
    const proof = yield* sign(key, CONNECTOR, theirs, ours)
    yield* wire.write(encodeFrame(FrameType.Proof, concat(ours, proof, u32(window))))
    const welcome = yield* expect(yield* readFrame(wire), FrameType.Welcome, MAC + 4)
    if (!(yield* verify(key, LISTENER, ours, theirs, welcome.body.subarray(0, MAC)))) {
      return yield* new LinkAuthError({ reason: "the peer could not prove the cluster secret" })
    }
    return readU32(welcome.body, MAC)
  }).pipe(
    Effect.catchTag("SocketError", (e) => Effect.fail(new LinkAuthError({ reason: `connection failed during the handshake (${e.message})`, cause: e }))),
    Effect.catchTag("LinkClosedError", (e) => Effect.fail(new LinkAuthError({ reason: `connection closed during the handshake (${e.reason})`, cause: e }))),
    Effect.catchTag("LinkProtocolError", (e) => Effect.fail(new LinkAuthError({ reason: `the peer does not speak the link protocol (${e.reason})` }))),
    within(timeoutMs)
  )

/**
 * The listening side: challenges the connector and checks its proof before
 * proving its own. Returns the connector's receive window.
 */
export const listener = (wire: Wire, key: SecretKey, window: number, timeoutMs: number) =>
  Effect.gen(function*() {
    const ours = nonce()
    yield* wire.write(encodeFrame(FrameType.Hello, concat(new Uint8Array(MAGIC), new Uint8Array([VERSION]), ours)))
    const proof = yield* expect(yield* readFrame(wire), FrameType.Proof, NONCE + MAC + 4)
    const theirs = proof.body.slice(0, NONCE)
    if (!(yield* verify(key, CONNECTOR, ours, theirs, proof.body.subarray(NONCE, NONCE + MAC)))) {
      return yield* new LinkAuthError({ reason: "the peer could not prove the cluster secret" })
    }
    const mac = yield* sign(key, LISTENER, theirs, ours)
    yield* wire.write(encodeFrame(FrameType.Welcome, concat(mac, u32(window))))
    return readU32(proof.body, NONCE + MAC)
  }).pipe(
    Effect.catchTag("SocketError", (e) => Effect.fail(new LinkAuthError({ reason: `connection failed during the handshake (${e.message})`, cause: e }))),
    within(timeoutMs)
  )

/** Tells a refused connector why, before the connection is closed. */
export const reject = (wire: Wire, reason: string) =>
  Effect.ignore(wire.write(encodeFrame(FrameType.Reject, text.encode(reason))))
