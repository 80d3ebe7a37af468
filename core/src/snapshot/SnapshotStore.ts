/**
 * Where snapshots live. A store keeps the frames of each job's snapshots by
 * id; what a snapshot means (which one to restore, how many to keep) is
 * decided here once, for every store: a job restores the newest one that
 * decodes, and a store holding snapshots of a job none of which decodes is an
 * error, never an empty store (a job that had committed output must not start
 * over as if it never ran).
 */
import { Context, Effect, FileSystem, Layer, Option } from "effect"
import { decode, encode, FRAME_HEADER, frameBodyLength, type Snapshot, SnapshotError } from "./Snapshot.ts"

/** The binary form of a snapshot (checksummed frames), for stores written elsewhere. */
export { decode, encode } from "./Snapshot.ts"
export type { Snapshot } from "./Snapshot.ts"

/** How many complete snapshots a job keeps by default: the newest and the one before, to fall back to. */
export const DEFAULT_RETAINED = 2

export interface SnapshotStore {
  readonly name: string
  /** Stores a complete snapshot; when this returns it survives a crash. */
  readonly save: (snapshot: Snapshot) => Effect.Effect<void, SnapshotError, any>
  /** The ids of the snapshots stored for `job`, in any order. */
  readonly ids: (job: string) => Effect.Effect<ReadonlyArray<number>, SnapshotError, any>
  /** The frames of snapshot `id` as stored, damaged or not (`decode` checks them). */
  readonly read: (job: string, id: number) => Effect.Effect<ReadonlyArray<Uint8Array>, SnapshotError, any>
  readonly remove: (job: string, id: number) => Effect.Effect<void, SnapshotError, any>
}

/** Snapshot `id` of `job`, checked frame by frame: fails with the damage found. */
export const load = (store: SnapshotStore, job: string, id: number): Effect.Effect<Snapshot, SnapshotError, any> =>
  Effect.flatMap(store.read(job, id), (frames) =>
    Effect.try({
      try: () => decode(job, frames),
      catch: (e) => new SnapshotError({ job, reason: `snapshot ${id} in ${store.name} is damaged: ${(e as SnapshotError).reason}` })
    }))

/**
 * The newest intact snapshot of `job` (a damaged one is skipped, never used), or
 * `undefined` when the store has none. Snapshots that are all damaged fail
 * with a `SnapshotError` naming each and its damage.
 */
export const latest = (store: SnapshotStore, job: string): Effect.Effect<Snapshot | undefined, SnapshotError, any> =>
  Effect.gen(function*() {
    const ids = [...yield* store.ids(job)].sort((a, b) => b - a)
    const damage: Array<string> = []
    for (const id of ids) {
      const frames = yield* store.read(job, id)
      try {
        return decode(job, frames)
      } catch (e) {
        damage.push(`${id} (${(e as SnapshotError).reason})`)
      }
    }
    if (damage.length === 0) return undefined
    return yield* new SnapshotError({
      job,
      reason: `no intact snapshot in ${store.name}, so the job cannot resume without repeating or losing output; ` +
        `damaged: ${damage.join(", ")}. To start over, remove the job's snapshots and its output`
    })
  })

/**
 * The snapshot a job restarts from: the newest intact one. Damaged newer ones
 * are removed (logged): they can never be restored, and the snapshots taken
 * after the restart take their ids. A job that committed output up to
 * snapshot `committed` never restarts from nothing: that would repeat it.
 */
export const recover = (store: SnapshotStore, job: string, committed: number): Effect.Effect<Snapshot | undefined, SnapshotError, any> =>
  Effect.gen(function*() {
    const snapshot = yield* latest(store, job)
    if (!snapshot) {
      if (committed === 0) return undefined
      return yield* new SnapshotError({
        job,
        reason: `its snapshots are gone from ${store.name} after it committed output up to snapshot ${committed}: ` +
          `it does not start over, which would repeat that output; to start over, remove its output and run it again`
      })
    }
    const newer = (yield* store.ids(job)).filter((id) => id > snapshot.id)
    if (newer.length > 0) {
      yield* Effect.logWarning(`job "${job}": snapshot${newer.length > 1 ? "s" : ""} ${newer.join(", ")} in ${store.name} damaged; restoring snapshot ${snapshot.id}`)
      yield* Effect.forEach(newer, (id) => store.remove(job, id), { discard: true })
    }
    return snapshot
  })

/** Deletes all but the newest `retain` snapshots of `job`. */
export const prune = (store: SnapshotStore, job: string, retain: number): Effect.Effect<void, SnapshotError, any> =>
  Effect.flatMap(store.ids(job), (ids) =>
    Effect.forEach([...ids].sort((a, b) => b - a).slice(retain), (id) => store.remove(job, id), { discard: true }))

/** Deletes every snapshot of `job`: the explicit way to start a job over. */
export const clear = (store: SnapshotStore, job: string): Effect.Effect<void, SnapshotError, any> => prune(store, job, 0)

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
    ids: (job) => Effect.sync(() => [...of(job).keys()]),
    read: (job, id) => Effect.sync(() => of(job).get(id) ?? []),
    remove: (job, id) => Effect.sync(() => void of(job).delete(id))
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

/**
 * The frames of a snapshot file, read one at a time; a damaged tail ends up as
 * a short frame, for `decode` to reject. A length field is trusted only as far
 * as the file goes: a damaged one must not make us allocate gigabytes.
 */
const readFrames = (fs: FileSystem.FileSystem, path: string) =>
  Effect.scoped(Effect.gen(function*() {
    const file = yield* fs.open(path, { flag: "r" })
    let left = Number((yield* file.stat).size)
    const frames: Array<Uint8Array> = []
    while (true) {
      const header = yield* readUpTo(file, FRAME_HEADER)
      left -= header.length
      if (header.length === 0) return frames
      const length = frameBodyLength(header)
      if (length === undefined) return [...frames, header]
      if (length > left) return [...frames, header.subarray(0, header.length - 1)]
      const bytes = new Uint8Array(FRAME_HEADER + length)
      bytes.set(header)
      bytes.set(yield* readUpTo(file, length), FRAME_HEADER)
      left -= length
      frames.push(bytes)
    }
  }))

const fileName = (job: string, id: number) => `${encodeURIComponent(job)}.${String(id).padStart(12, "0")}.snapshot`

/**
 * Snapshots as files in `directory` (the embedded default): written to a temp
 * name, flushed to disk, then renamed, so a crash leaves either the whole
 * snapshot or none.
 */
export const directory = (directory: string): SnapshotStore => {
  const failed = (job: string, reason: string) => (cause: unknown) => new SnapshotError({ job, reason: `${reason} (${directory})`, cause })
  const path = (job: string, id: number) => `${directory}/${fileName(job, id)}`
  return {
    name: `directory ${directory}`,
    save: (snapshot) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const final = path(snapshot.job, snapshot.id)
        const temp = `${final}.tmp`
        yield* fs.makeDirectory(directory, { recursive: true })
        yield* Effect.scoped(Effect.gen(function*() {
          const file = yield* fs.open(temp, { flag: "w" })
          for (const frame of encode(snapshot)) yield* file.writeAll(frame)
          yield* file.sync
        }))
        yield* fs.rename(temp, final)
      }).pipe(Effect.mapError(failed(snapshot.job, "cannot be written"))),
    ids: (job) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        if (!(yield* fs.exists(directory))) return []
        const prefix = `${encodeURIComponent(job)}.`
        return (yield* fs.readDirectory(directory))
          .filter((n) => n.startsWith(prefix) && n.endsWith(".snapshot"))
          .map((n) => Number(n.slice(prefix.length, -".snapshot".length)))
          .filter((id) => Number.isInteger(id))
      }).pipe(Effect.mapError(failed(job, "cannot be listed"))),
    read: (job, id) =>
      Effect.gen(function*() {
        return yield* readFrames(yield* FileSystem.FileSystem, path(job, id))
      }).pipe(
        Effect.mapError(failed(job, `snapshot ${id} cannot be read`))
      ),
    remove: (job, id) =>
      Effect.gen(function*() {
        yield* (yield* FileSystem.FileSystem).remove(path(job, id))
      }).pipe(
        Effect.mapError(failed(job, `snapshot ${id} cannot be removed`))
      )
  }
}
