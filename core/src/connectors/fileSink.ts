import { Effect, Exit, FileSystem, Scope } from "effect"
import { FINAL_SNAPSHOT } from "../snapshot/Coordinator.ts"
import * as Sink from "../pipeline/Sink.ts"

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
 * removes those of an earlier run (other files are left alone).
 */
export const files = <A>(
  directory: string,
  options?: DirectorySinkOptions<A>
): Sink.Sink<A, FileSystem.FileSystem> => {
  const format = options?.format ?? ((a: A) => (typeof a === "string" ? a : JSON.stringify(a)))
  return Sink.make({
    name: options?.name ?? "directory",
    open: ({ instance, instances, restoredSnapshot }) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = directory.endsWith("/") ? directory : `${directory}/`
        const partOf = (n: number) => `part-${pad(n, 5)}`
        const part = partOf(instance)
        const tempPath = `${dir}.${part}.tmp`
        const pendingPath = (n: number, id: number) => `${dir}.${partOf(n)}.${pad(id, 16)}.pending`
        const finalPath = (n: number, id: number) => (id === FINAL_SNAPSHOT ? `${dir}${partOf(n)}` : `${dir}${partOf(n)}-${pad(id, 12)}`)
        yield* fs.makeDirectory(directory, { recursive: true })

        /**
         * The files of `kind` this instance answers for, oldest first: its own, and those of
         * instances that no longer exist after a rescale (n mod instances = instance).
         */
        const owned = (kind: "pending" | "committed") =>
          Effect.map(fs.readDirectory(directory), (names) =>
            names.flatMap((name) => {
              const m = kind === "pending" ? /^\.part-(\d{5})\.(\d{16})\.pending$/.exec(name) : /^part-(\d{5})(?:-(\d{12}))?$/.exec(name)
              const n = Number(m?.[1])
              const id = m?.[2] === undefined ? FINAL_SNAPSHOT : Number(m[2])
              return m && (n === instance || (n >= instances && n % instances === instance)) ? [{ n, id }] : []
            }).sort((a, b) => a.id - b.id))
        const commit = (upTo: number) =>
          Effect.flatMap(owned("pending"), (txs) =>
            Effect.forEach(txs.filter((t) => t.id <= upTo), (t) => fs.rename(pendingPath(t.n, t.id), finalPath(t.n, t.id)), { discard: true }))

        // After a restart: transactions the restored snapshot covers are committed, later ones
        // discarded — their records are replayed. So are parts committed after it (when a newer
        // snapshot was found damaged, or on a fresh start, where every part is of an older run):
        // each record ends up in the directory once.
        if (restoredSnapshot !== undefined) yield* commit(restoredSnapshot)
        for (const t of yield* owned("pending")) yield* fs.remove(pendingPath(t.n, t.id))
        for (const t of yield* owned("committed")) if (t.id > (restoredSnapshot ?? 0)) yield* fs.remove(finalPath(t.n, t.id))

        let written = 0
        let file: { readonly handle: FileSystem.File; readonly scope: Scope.Closeable } | undefined
        const open = Effect.gen(function*() {
          const scope = yield* Scope.make()
          const handle = yield* Scope.provide(fs.open(tempPath, { flag: "w" }), scope)
          file = { handle, scope }
          written = 0
        })
        const close = Effect.suspend(() => {
          const f = file
          file = undefined
          return f ? Effect.andThen(f.handle.sync, Scope.close(f.scope, Exit.void)) : Effect.void
        })
        // A temp file left by a failure or a cancel is removed once its handle is closed.
        yield* Effect.addFinalizer(() => Effect.andThen(Effect.ignore(close), Effect.ignore(fs.remove(tempPath, { force: true }))))
        yield* open
        const encoder = new TextEncoder()
        return {
          write: (batch) =>
            batch.length === 0 ? Effect.void : Effect.flatMap(
              Effect.try({ try: () => encoder.encode(batch.map(format).join("\n") + "\n"), catch: (e) => e }),
              (bytes) => Effect.andThen(file!.handle.writeAll(bytes), Effect.sync(() => void (written += batch.length)))
            ),
          prepare: (id) =>
            Effect.gen(function*() {
              if (written === 0 && id !== FINAL_SNAPSHOT) return
              yield* close
              yield* fs.rename(tempPath, pendingPath(instance, id))
              if (id !== FINAL_SNAPSHOT) yield* open
            }),
          commit: (id) => commit(id)
        }
      })
  })
}
