/**
 * What a snapshot holds and how it is written: msgpack (compact, keeps Maps,
 * Sets, NaN and undefined) in checksummed frames — a manifest, then each
 * step's state in chunks of at most `CHUNK_ENTRIES` keyed entries — so a
 * store writes and reads a snapshot a frame at a time (never one buffer of
 * the whole state), and a corrupt or truncated snapshot is detected and never
 * restored.
 */
import { Data } from "effect"
import { Packr } from "msgpackr"
import type { KeyedColumns } from "../operator/Operator.ts"

// `moreTypes` keeps Maps, Sets, typed arrays and dates; no `structuredClone`: its
// reference tracking makes encoding many small values ten times slower.
const packr = new Packr({ moreTypes: true })

/** Keyed entries per chunk of state. */
const CHUNK_ENTRIES = 32_768

/**
 * The state one step of one vertex instance wrote, encoded at the barrier (the
 * operator goes on mutating its live state right after).
 */
export interface StepState {
  /** The step's state key: its stage's name, so a changed pipeline finds the state of its stages. */
  readonly stage: string
  readonly instance: number
  /** `packState({ keyed, local })`. */
  readonly chunks: ReadonlyArray<Uint8Array>
}

export interface StateData {
  readonly keyed: ReadonlyArray<KeyedColumns>
  readonly local: ReadonlyArray<unknown>
}

/** The local values, then the keyed columns cut into chunks. */
export const packState = (state: StateData): ReadonlyArray<Uint8Array> => {
  const chunks = [packr.pack(state.local)]
  for (const column of state.keyed) {
    const [tag, keys, values] = column
    if (keys.length <= CHUNK_ENTRIES) {
      if (keys.length > 0) chunks.push(packr.pack(column))
      continue
    }
    for (let i = 0; i < keys.length; i += CHUNK_ENTRIES) {
      chunks.push(packr.pack([tag, keys.slice(i, i + CHUNK_ENTRIES), values.slice(i, i + CHUNK_ENTRIES)]))
    }
  }
  return chunks
}

export const unpackState = (chunks: ReadonlyArray<Uint8Array>): StateData => ({
  local: packr.unpack(chunks[0]!) as ReadonlyArray<unknown>,
  keyed: chunks.slice(1).map((c) => packr.unpack(c) as KeyedColumns)
})

export interface Snapshot {
  readonly job: string
  readonly id: number
  readonly steps: ReadonlyArray<StepState>
  /** Tasklets (`vertex#instance`) that had ended: a sink among them had prepared its final transaction. */
  readonly ended: ReadonlyArray<string>
  /** Source positions by source stage name and instance. */
  readonly positions: ReadonlyArray<readonly [source: string, instance: number, position: unknown]>
}

export class SnapshotError extends Data.TaggedError("SnapshotError")<{
  readonly job: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `snapshot of job "${this.job}": ${this.reason}`
  }
}

const MAGIC = 0x54524942 // "TRIB"

/**
 * CRC-32 (IEEE), to tell a damaged snapshot from a good one. Slicing-by-8
 * (eight bytes per step through eight tables): about 4x the byte-wise loop,
 * which matters on snapshots of tens of megabytes.
 */
const tables = (() => {
  const t = new Int32Array(256 * 8)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k * 256 + n] = t[t[(k - 1) * 256 + n]! & 0xff]! ^ (t[(k - 1) * 256 + n]! >>> 8)
  }
  return t
})()
export const crc32 = (b: Uint8Array): number => {
  const t = tables
  let c = ~0
  let i = 0
  for (; i + 8 <= b.length; i += 8) {
    const lo = c ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24))
    c = t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^ t[1280 + ((lo >>> 16) & 0xff)]! ^ t[1024 + (lo >>> 24)]! ^
      t[768 + b[i + 4]!]! ^ t[512 + b[i + 5]!]! ^ t[256 + b[i + 6]!]! ^ t[b[i + 7]!]!
  }
  for (; i < b.length; i++) c = t[(c ^ b[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

/** Bytes of a frame's header: magic, body length, CRC-32 of the body. */
export const FRAME_HEADER = 12

const frame = (body: Uint8Array): Uint8Array => {
  const out = new Uint8Array(FRAME_HEADER + body.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, MAGIC)
  view.setUint32(4, body.length)
  view.setUint32(8, crc32(body))
  out.set(body, FRAME_HEADER)
  return out
}

/** The body length a frame header announces, or `undefined` if it is not a frame header. */
export const frameBodyLength = (header: Uint8Array): number | undefined => {
  if (header.length < FRAME_HEADER) return undefined
  const view = new DataView(header.buffer, header.byteOffset, FRAME_HEADER)
  return view.getUint32(0) === MAGIC ? view.getUint32(4) : undefined
}

interface Manifest extends Omit<Snapshot, "steps"> {
  readonly steps: ReadonlyArray<readonly [stage: string, instance: number, chunks: number]>
}

/** The frames of a snapshot, to be written in order: its manifest, then every step's chunks. */
export const encode = (snapshot: Snapshot): ReadonlyArray<Uint8Array> => {
  const manifest: Manifest = { ...snapshot, steps: snapshot.steps.map((s) => [s.stage, s.instance, s.chunks.length] as const) }
  return [frame(packr.pack(manifest)), ...snapshot.steps.flatMap((s) => s.chunks.map(frame))]
}

export const decode = (job: string, frames: ReadonlyArray<Uint8Array>): Snapshot => {
  const fail = (reason: string): never => {
    throw new SnapshotError({ job, reason })
  }
  const bodies = frames.map((bytes, i) => {
    const length = frameBodyLength(bytes) ?? fail(`frame ${i}: not a Tributary snapshot frame`)
    if (bytes.length !== FRAME_HEADER + length) fail(`frame ${i} truncated: ${bytes.length - FRAME_HEADER} of ${length} bytes`)
    const body = bytes.subarray(FRAME_HEADER)
    if (crc32(body) !== new DataView(bytes.buffer, bytes.byteOffset).getUint32(8)) fail(`frame ${i}: checksum mismatch (corrupt)`)
    return body
  })
  if (bodies.length === 0) fail("empty")
  const manifest = packr.unpack(bodies[0]!) as Manifest
  const expected = 1 + manifest.steps.reduce((n, [, , chunks]) => n + chunks, 0)
  if (bodies.length !== expected) fail(`truncated: ${bodies.length} of ${expected} frames`)
  let next = 1
  const steps = manifest.steps.map(([stage, instance, chunks]): StepState => ({
    stage,
    instance,
    chunks: bodies.slice(next, (next += chunks))
  }))
  return { ...manifest, steps }
}
