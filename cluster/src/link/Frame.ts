/**
 * The wire format of a link: length-prefixed binary frames. A frame is a
 * 4-byte big-endian length (of everything after it), a 1-byte frame type and
 * the body. Batches and control items are msgpack bodies (records as msgpackr
 * records: each distinct shape's keys are written once per frame, not once per
 * record); handshake and credit frames are fixed binary layouts.
 */
import type { NonEmptyReadonlyArray } from "effect/Array"
import { Packr } from "msgpackr"
import { LinkProtocolError } from "./Errors.ts"

export const FrameType = {
  /** Listener → connector: protocol magic, version and the listener's nonce. */
  Hello: 1,
  /** Connector → listener: its nonce, its HMAC over both nonces, its receive window. */
  Proof: 2,
  /** Listener → connector: its HMAC over both nonces, its receive window. */
  Welcome: 3,
  /** Listener → connector: authentication failed, the connection closes. */
  Reject: 4,
  /** A batch of records (a msgpack array). */
  Batch: 16,
  /** A control item (watermark, barrier, done...; a msgpack object). */
  Control: 17,
  /** The receiver consumed this many bytes: the sender may send as many more. */
  Credit: 18
} as const

export type FrameType = (typeof FrameType)[keyof typeof FrameType]

/** Bytes before a frame's body: length (4) and type (1). */
export const HEADER = 5

export interface Frame {
  readonly type: number
  readonly body: Uint8Array
  /** Bytes on the wire, header included: what flow control counts. */
  readonly size: number
}

/** A control item: a plain tagged object that travels in order with the batches. */
export type LinkControl =
  | { readonly _tag: "Watermark"; readonly time: number }
  | { readonly _tag: "Barrier"; readonly id: number }
  | { readonly _tag: "Idle" }
  | { readonly _tag: "Done" }

/** What a link carries: a batch of records (a plain array) or a control item. */
export type LinkItem = ReadonlyArray<unknown> | LinkControl

export const isBatch = (item: LinkItem): item is ReadonlyArray<unknown> => Array.isArray(item)

const header = (type: number, bodyLength: number): Uint8Array => {
  const bytes = new Uint8Array(HEADER)
  new DataView(bytes.buffer).setUint32(0, bodyLength + 1)
  bytes[4] = type
  return bytes
}

/** A frame as the chunks to write (header, body: the body is not copied). */
export const encodeFrame = (type: number, body: Uint8Array): NonEmptyReadonlyArray<Uint8Array> =>
  [header(type, body.length), body]

/** A frame whose body is one unsigned 32-bit number (credit). */
export const encodeU32Frame = (type: number, value: number): Uint8Array => {
  const bytes = new Uint8Array(HEADER + 4)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, 5)
  bytes[4] = type
  view.setUint32(5, value)
  return bytes
}

export const readU32 = (bytes: Uint8Array, offset: number): number =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset)

// `useRecords` writes each record shape's keys once per message, so frames stay
// self-contained (no structure state shared between frames or peers).
const packr = new Packr({ useRecords: true, moreTypes: true })

/** The frame type and msgpack body of an item. */
export const encodeItem = (item: LinkItem): { readonly type: number; readonly body: Uint8Array } =>
  Array.isArray(item)
    ? { type: FrameType.Batch, body: packr.pack(item) }
    : { type: FrameType.Control, body: packr.pack({ ...item }) }

/** The item in a Batch or Control frame; throws on a malformed body. */
export const decodeItem = (frame: Frame): LinkItem => {
  const value: unknown = packr.unpack(frame.body)
  if (frame.type === FrameType.Batch ? !Array.isArray(value) : typeof (value as LinkControl)?._tag !== "string") {
    throw new Error(`frame of type ${frame.type} does not hold ${frame.type === FrameType.Batch ? "a batch" : "a control item"}`)
  }
  return value as LinkItem
}

/**
 * Cuts a byte stream into frames. Chunks are kept as they arrive and a frame
 * is copied only when it spans chunks. Frames are parsed one at a time, on
 * demand, against the current `maxLength`: bytes that came right behind the
 * last handshake frame are judged by the limit of the established link.
 */
export class FrameDecoder {
  private readonly chunks: Array<Uint8Array> = []
  private offset = 0 // into chunks[0]
  private buffered = 0
  /** The largest frame (type + body) accepted: bounds what an unauthenticated or broken peer can make us buffer. */
  maxLength: number

  constructor(maxLength: number) {
    this.maxLength = maxLength
  }

  /** Adds received bytes. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }

  /** The next complete frame, if all its bytes are here; throws `LinkProtocolError` on an impossible length. */
  next(): Frame | undefined {
    if (this.buffered < 4) return undefined
    const length = this.peekLength()
    if (length < 1 || length > this.maxLength) {
      throw new LinkProtocolError({ reason: `frame of ${length} bytes (at most ${this.maxLength} allowed here)` })
    }
    if (this.buffered < 4 + length) return undefined
    const bytes = this.take(4 + length)
    return { type: bytes[4]!, body: bytes.subarray(HEADER), size: bytes.length }
  }

  /** Takes every byte received but not yet framed (what follows the handshake, for another protocol). */
  rest(): Array<Uint8Array> {
    const rest = this.chunks.map((chunk, i) => (i === 0 ? chunk.subarray(this.offset) : chunk)).filter((c) => c.length > 0)
    this.chunks.length = 0
    this.offset = 0
    this.buffered = 0
    return rest
  }

  private peekLength(): number {
    const first = this.chunks[0]!
    if (first.length - this.offset >= 4) return readU32(first, this.offset)
    return readU32(this.take(4, true), 0)
  }

  /** The next `n` buffered bytes (consumed unless `peek`). */
  private take(n: number, peek = false): Uint8Array {
    const first = this.chunks[0]!
    if (first.length - this.offset >= n) {
      const bytes = first.subarray(this.offset, this.offset + n)
      if (!peek) this.consume(n)
      return bytes
    }
    const bytes = new Uint8Array(n)
    let filled = 0
    for (let i = 0, offset = this.offset; filled < n; i++, offset = 0) {
      const chunk = this.chunks[i]!
      const part = Math.min(chunk.length - offset, n - filled)
      bytes.set(chunk.subarray(offset, offset + part), filled)
      filled += part
    }
    if (!peek) this.consume(n)
    return bytes
  }

  private consume(n: number): void {
    this.buffered -= n
    while (n > 0) {
      const available = this.chunks[0]!.length - this.offset
      if (n < available) {
        this.offset += n
        return
      }
      n -= available
      this.chunks.shift()
      this.offset = 0
    }
  }
}
