import { Effect, Exit, FileSystem, Scope } from "effect"
import { FINAL_SNAPSHOT } from "../snapshot/Coordinator.ts"
import * as Transactional from "../connector/Transactional.ts"
import type * as Sink from "../pipeline/Sink.ts"

export interface DirectorySinkOptions<A> {
  readonly name?: string | undefined
  /** One record as one line (default: strings as they are, other values as JSON). */
  readonly format?: ((a: A) => string) | undefined
}

const pad = (n: number, width: number) => String(n).padStart(width, "0")

/**
 * Writes each record as a line into `directory` (created if missing), one file
 * per instance: `part-00000`, `part-00001`, ... Records go to a hidden temp
 * file; readers only ever see whole files. The sink is two-phase-commit:
 * with a processing guarantee, each snapshot barrier turns the temp file into
 * a hidden pending transaction and the completed snapshot renames it to
 * `part-<instance>-<snapshot>`, so with exactly-once a record becomes visible
 * once, after the snapshot that covers it. The last part is `part-<instance>`,
 * renamed when the job completes; a failed or cancelled job leaves no partial file.
 * The sink owns the `part-*` files of the directory: a job that starts afresh
 * removes those of an earlier run (other files are left alone). It is fenced:
 * while the job runs, the hidden `.tributary-epoch` holds the newest execution
 * that opened it, and an instance of an older one (a member cut off from its
 * cluster) can no longer commit.
 */
export const files = <A>(
  directory: string,
  options?: DirectorySinkOptions<A>
): Sink.Sink<A, FileSystem.FileSystem> => {
  const format = options?.format ?? ((a: A) => (typeof a === "string" ? a : JSON.stringify(a)))
  const encoder = new TextEncoder()
  const name = options?.name ?? "directory"
  return Transactional.make({
    name,
    open: ({ instance, job = "" }) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = directory.endsWith("/") ? directory : `${directory}/`
        const partOf = (n: number) => `part-${pad(n, 5)}`
        const tempPath = `${dir}.${partOf(instance)}.tmp`
        const pendingPath = (id: Transactional.TransactionId) => `${dir}.${partOf(id.instance)}.${pad(id.snapshot, 16)}.pending`
        const finalPath = (n: number, id: number) => (id === FINAL_SNAPSHOT ? `${dir}${partOf(n)}` : `${dir}${partOf(n)}-${pad(id, 12)}`)
        const epochPath = `${dir}.tributary-epoch`
        yield* fs.makeDirectory(directory, { recursive: true })
        /** The files of the directory matching `pattern` (instance, then snapshot id, if any). */
        const parts = (pattern: RegExp) =>
          Effect.map(fs.readDirectory(directory), (names) =>
            names.flatMap((name) => {
              const m = pattern.exec(name)
              return m ? [{ instance: Number(m[1]), snapshot: m[2] === undefined ? FINAL_SNAPSHOT : Number(m[2]) }] : []
            }))

        // The open transaction is the temp file; one left by a failure or a cancel is removed once closed.
        let file: { readonly handle: FileSystem.File; readonly scope: Scope.Closeable } | undefined
        const close = Effect.suspend(() => {
          const f = file
          file = undefined
          return f ? Effect.andThen(f.handle.sync, Scope.close(f.scope, Exit.void)) : Effect.void
        })
        yield* Effect.addFinalizer(() => Effect.andThen(Effect.ignore(close), Effect.ignore(fs.remove(tempPath, { force: true }))))
        const connection: Transactional.Connection<A, FileSystem.File> = {
          begin: Effect.gen(function*() {
            const scope = yield* Scope.make()
            const handle = yield* Scope.provide(fs.open(tempPath, { flag: "w" }), scope)
            file = { handle, scope }
            return handle
          }),
          write: (handle, batch) =>
            Effect.flatMap(Effect.try({ try: () => encoder.encode(batch.map(format).join("\n") + "\n"), catch: (e) => e }), (bytes) => handle.writeAll(bytes)),
          prepare: (_, id) => Effect.andThen(close, fs.rename(tempPath, pendingPath(id))),
          // Committing is renaming: once renamed, the pending file is gone and a second commit does nothing.
          commit: (id) =>
            fs.rename(pendingPath(id), finalPath(id.instance, id.snapshot)).pipe(
              Effect.catchReason("PlatformError", "NotFound", () => Effect.void),
              // A job that completed leaves only its parts: nothing of it runs any more to fence off.
              Effect.andThen(id.snapshot === FINAL_SNAPSHOT ? fs.remove(epochPath, { force: true }) : Effect.void)
            ),
          abort: (id) => fs.remove(pendingPath(id), { force: true }),
          // The files carry no job name: the sink owns the directory's parts, whichever job wrote them.
          recover: Effect.map(parts(/^\.part-(\d{5})\.(\d{16})\.pending$/), (ids) => ids.map((id) => ({ ...id, job, sink: name }))),
          // Parts committed after the restored snapshot (a newer one was found damaged, or on a fresh
          // start, where every part is of an older run) are replayed: each record ends up here once.
          withdraw: (after, owns) =>
            Effect.flatMap(parts(/^part-(\d{5})(?:-(\d{12}))?$/), (committed) =>
              Effect.forEach(committed.filter((p) => owns(p.instance) && p.snapshot > after), (p) => fs.remove(finalPath(p.instance, p.snapshot)), {
                discard: true
              })),
          epoch: {
            get: fs.readFileString(epochPath).pipe(
              Effect.map((text) => Number(text)),
              Effect.catchReason("PlatformError", "NotFound", () => Effect.succeed(undefined))
            ),
            // Renamed into place, so that a reader never sees a half-written number.
            set: (execution) =>
              Effect.andThen(
                fs.writeFileString(`${epochPath}.${instance}.tmp`, String(execution)),
                fs.rename(`${epochPath}.${instance}.tmp`, epochPath)
              )
          }
        }
        return connection
      })
  })
}
