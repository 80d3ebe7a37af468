/**
 * Where snapshots live. A store keeps the snapshots of each job by id; a job
 * restores the newest one that decodes (a damaged file is skipped, never
 * used) and prunes older ones once a newer one is complete.
 */
import { Context, Effect, FileSystem, Layer, Option } from "effect"
import { decode, encode, FRAME_HEADER, frameBodyLength, type Snapshot, SnapshotError } from "./Snapshot.ts"

/** The binary form of a snapshot (checksummed frames), for stores written elsewhere. */
export { decode, encode } from "./Snapshot.ts"
export type { Snapshot } from "./Snapshot.ts"

export interface SnapshotStore {
  readonly name: string
  /** Stores a complete snapshot; when this returns it survives a crash. */
  readonly save: (snapshot: Snapshot) => Effect.Effect<void, SnapshotError, any>
  /** The newest intact snapshot of `job`, if any. */
  readonly latest: (job: string) => Effect.Effect<Snapshot | undefined, SnapshotError, any>
  /** Deletes the snapshots of `job` older than `keep`. */
  readonly prune: (job: string, keep: number) => Effect.Effect<void, SnapshotError, any>
}

/**
 * The snapshot store of the jobs run with this service provided (the
 * `snapshotStore` job option overrides it). Without either, each job keeps its
 * snapshots in its own memory store.
 */
export const Current = Context.Reference<SnapshotStore | undefined>("tributary/SnapshotStore", { defaultValue: () => undefined })

/** Provides `store` to every job run in the effect: `Effect.provide(SnapshotStore.layer(store))`. */
export const layer = (store: SnapshotStore): Layer.Layer<never> => Layer.succeed(Current, store)

/** Snapshots in this process's memory (encoded, as they would be on disk): tests and throwaway jobs. */
export const memory = (): SnapshotStore & { readonly raw: Map<string, Map<number, ReadonlyArray<Uint8Array>>> } => {
  const raw = new Map<string, Map<number, ReadonlyArray<Uint8Array>>>()
  const of = (job: string) => {
    let byId = raw.get(job)
    if (!byId) raw.set(job, (byId = new Map()))
    return byId
  }
  return {
    name: "memory",
    raw,
    save: (snapshot) => Effect.sync(() => void of(snapshot.job).set(snapshot.id, encode(snapshot))),
    latest: (job) =>
      Effect.sync(() => {
        for (const id of [...of(job).keys()].sort((a, b) => b - a)) {
          try {
            return decode(job, of(job).get(id)!)
          } catch {
            continue
          }
        }
        return undefined
      }),
    prune: (job, keep) => Effect.sync(() => of(job).forEach((_, id) => id < keep && of(job).delete(id)))
  }
}

/** Up to `size` bytes from the file's current position (fewer only at its end). */
const readUpTo = (file: FileSystem.File, size: number) =>
  Effect.gen(function*() {
    const out = new Uint8Array(size)
    let filled = 0
    while (filled < size) {
      const chunk = yield* file.readAlloc(size - filled)
      if (Option.isNone(chunk) || chunk.value.length === 0) break
      out.set(chunk.value, filled)
      filled += chunk.value.length
    }
    return filled === size ? out : out.subarray(0, filled)
  })

/** The frames of a snapshot file, read one at a time; a damaged tail ends up as a short frame, for `decode` to reject. */
const readFrames = (fs: FileSystem.FileSystem, path: string) =>
  Effect.scoped(Effect.gen(function*() {
    const file = yield* fs.open(path, { flag: "r" })
    const frames: Array<Uint8Array> = []
    while (true) {
      const header = yield* readUpTo(file, FRAME_HEADER)
      if (header.length === 0) return frames
      const length = frameBodyLength(header)
      if (length === undefined) return [...frames, header]
      const bytes = new Uint8Array(FRAME_HEADER + length)
      bytes.set(header)
      const body = yield* readUpTo(file, length)
      bytes.set(body, FRAME_HEADER)
      frames.push(body.length === length ? bytes : bytes.subarray(0, FRAME_HEADER + body.length))
    }
  }))

const fileName = (job: string, id: number) => `${encodeURIComponent(job)}.${String(id).padStart(12, "0")}.snapshot`

/**
 * Snapshots as files in `directory` (the embedded default): written to a temp
 * name, flushed to disk, then renamed, so a crash leaves either the whole
 * snapshot or none.
 */
export const directory = (directory: string): SnapshotStore => {
  const failed = (job: string, reason: string) => (cause: unknown) => new SnapshotError({ job, reason, cause })
  const path = (name: string) => `${directory}/${name}`
  const idsOf = (fs: FileSystem.FileSystem, job: string) =>
    Effect.map(fs.readDirectory(directory), (names) => {
      const prefix = `${encodeURIComponent(job)}.`
      return names.filter((n) => n.startsWith(prefix) && n.endsWith(".snapshot"))
        .map((n) => Number(n.slice(prefix.length, -".snapshot".length)))
        .filter((id) => Number.isInteger(id))
        .sort((a, b) => b - a)
    })
  return {
    name: `directory ${directory}`,
    save: (snapshot) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const final = path(fileName(snapshot.job, snapshot.id))
        const temp = `${final}.tmp`
        yield* fs.makeDirectory(directory, { recursive: true })
        yield* Effect.scoped(Effect.gen(function*() {
          const file = yield* fs.open(temp, { flag: "w" })
          for (const frame of encode(snapshot)) yield* file.writeAll(frame)
          yield* file.sync
        }))
        yield* fs.rename(temp, final)
      }).pipe(Effect.mapError(failed(snapshot.job, "cannot be written"))),
    latest: (job) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        if (!(yield* fs.exists(directory))) return undefined
        for (const id of yield* idsOf(fs, job)) {
          const frames = yield* readFrames(fs, path(fileName(job, id)))
          try {
            return decode(job, frames)
          } catch {
            // damaged or partial: fall back to an older one
          }
        }
        return undefined
      }).pipe(Effect.mapError(failed(job, "cannot be read"))),
    prune: (job, keep) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        for (const id of yield* idsOf(fs, job)) if (id < keep) yield* fs.remove(path(fileName(job, id)))
      }).pipe(Effect.mapError(failed(job, "cannot be pruned")))
  }
}
