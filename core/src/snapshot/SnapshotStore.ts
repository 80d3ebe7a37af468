/**
 * Where snapshots live. A store keeps the snapshots of each job by id; a job
 * restores the newest one that decodes (a damaged file is skipped, never
 * used) and prunes older ones once a newer one is complete.
 */
import { Effect, FileSystem } from "effect"
import { decode, encode, type Snapshot, SnapshotError } from "./Snapshot.ts"

/** The binary form of a snapshot (checksummed), for stores written elsewhere. */
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

/** Snapshots in this process's memory (encoded, as they would be on disk): tests and throwaway jobs. */
export const memory = (): SnapshotStore & { readonly raw: Map<string, Map<number, Uint8Array>> } => {
  const raw = new Map<string, Map<number, Uint8Array>>()
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
          yield* file.writeAll(encode(snapshot))
          yield* file.sync
        }))
        yield* fs.rename(temp, final)
      }).pipe(Effect.mapError(failed(snapshot.job, "cannot be written"))),
    latest: (job) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        if (!(yield* fs.exists(directory))) return undefined
        for (const id of yield* idsOf(fs, job)) {
          const bytes = yield* fs.readFile(path(fileName(job, id)))
          try {
            return decode(job, bytes)
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
