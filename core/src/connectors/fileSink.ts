import { Effect, Exit, FileSystem, Scope } from "effect"
import * as Sink from "../pipeline/Sink.ts"

export interface DirectorySinkOptions<A> {
  readonly name?: string | undefined
  /** One record as one line (default: strings as they are, other values as JSON). */
  readonly format?: ((a: A) => string) | undefined
}

/**
 * Writes each record as a line into `directory` (created if missing), one file
 * per instance named `part-00000`, `part-00001`, ... Each instance writes to a
 * hidden temp file and renames it when the job completes, so readers only
 * ever see whole files; a failed or cancelled job removes its temp files.
 */
export const files = <A>(
  directory: string,
  options?: DirectorySinkOptions<A>
): Sink.Sink<A, FileSystem.FileSystem> => {
  const format = options?.format ?? ((a: A) => (typeof a === "string" ? a : JSON.stringify(a)))
  return Sink.make({
    name: options?.name ?? "directory",
    open: ({ instance }) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const part = `part-${String(instance).padStart(5, "0")}`
        const dir = directory.endsWith("/") ? directory : `${directory}/`
        const finalPath = `${dir}${part}`
        const tempPath = `${dir}.${part}.tmp`
        yield* fs.makeDirectory(directory, { recursive: true })
        let renamed = false
        // registered before the file's scope, so it runs after the handle is closed
        yield* Effect.addFinalizer(() => (renamed ? Effect.void : Effect.ignore(fs.remove(tempPath, { force: true }))))
        const fileScope = yield* Scope.fork(yield* Effect.scope)
        const file = yield* Scope.provide(fs.open(tempPath, { flag: "w" }), fileScope)
        const encoder = new TextEncoder()
        return {
          write: (batch) =>
            batch.length === 0
              ? Effect.void
              : Effect.flatMap(
                Effect.try({ try: () => encoder.encode(batch.map(format).join("\n") + "\n"), catch: (e) => e }),
                (bytes) => file.writeAll(bytes)
              ),
          complete: Effect.uninterruptible(Effect.gen(function*() {
            yield* file.sync
            yield* Scope.close(fileScope, Exit.void)
            yield* fs.rename(tempPath, finalPath)
            renamed = true
          }))
        }
      })
  })
}
