import { Data, Duration, Effect, FileSystem, PlatformError } from "effect"
import * as Splits from "../connector/Splits.ts"
import type * as Source from "../pipeline/Source.ts"

/** A file of a `files` source could not be listed, read or decoded. */
export class FileSourceError extends Data.TaggedError("FileSourceError")<{
  readonly path: string
  /** 1-based line of the file where the problem was found, when known. */
  readonly line?: number | undefined
  readonly reason: string
  readonly cause?: unknown
}> {
  // The cause's own message is left to the cause chain, so a rendering of the chain says it once.
  override get message() {
    const where = this.line === undefined ? this.path : `${this.path}:${this.line}`
    const kind = PlatformError.isPlatformError(this.cause) ? ` (${this.cause.reason._tag})` : ""
    return `${where}: ${this.reason}${kind}`
  }
}

export interface FilesOptions {
  /**
   * Which files to read, matched against paths relative to the directory:
   * `*` and `?` stay within a path segment, `**\/` spans directories (the only
   * way to read subdirectories). Wildcards do not match a leading `.`, so
   * hidden files (such as a directory sink's in-progress temp files) are
   * skipped unless named literally. Default `*`.
   */
  readonly glob?: string | undefined
  readonly name?: string | undefined
  /**
   * Watch the directory: list it again at this interval and read each new file
   * that matches; the source never ends. A file is read once, to its end, when
   * it is found, so it must appear whole: write it elsewhere (or under a hidden
   * name) and rename it into the directory, as a directory sink does.
   */
  readonly watch?: Duration.Input | undefined
}

const CHUNK_SIZE = 64 * 1024
const NEWLINE = 0x0a

const join = (directory: string, name: string) => (directory.endsWith("/") ? directory + name : `${directory}/${name}`)

const escapeRegExp = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&")

/** Converts a glob to an anchored RegExp (`*`, `?`, `**\/`; everything else is literal). */
const globToRegExp = (glob: string): RegExp => {
  let source = ""
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    const segmentStart = i === 0 || glob[i - 1] === "/"
    // wildcards opening a segment must not match the dot of a hidden name
    const noDot = segmentStart ? "(?!\\.)" : ""
    if (c === "*" && glob[i + 1] === "*" && segmentStart && glob[i + 2] === "/") {
      source += "(?:(?!\\.)[^/]+/)*"
      i += 2
    } else if (c === "*") {
      while (glob[i + 1] === "*") i++
      source += `${noDot}[^/]*`
    } else if (c === "?") {
      source += `${noDot}[^/]`
    } else {
      source += escapeRegExp(c)
    }
  }
  return new RegExp(`^${source}$`)
}

// `line` is set even when unknown: Bun gives every Error a `line` of its own
const cannotRead = (path: string) => (cause: unknown) =>
  new FileSourceError({ path, line: undefined, reason: "cannot read", cause })

/** The regular files of `directory` matching `glob`, relative to it and sorted. */
const listFiles = (fs: FileSystem.FileSystem, directory: string, glob: string) =>
  Effect.gen(function*() {
    const pattern = globToRegExp(glob)
    const info = yield* Effect.mapError(fs.stat(directory), (cause) =>
      new FileSourceError({
        path: directory,
        line: undefined,
        reason: cause.reason._tag === "NotFound" ? "no such directory" : "cannot read",
        cause
      }))
    if (info.type !== "Directory") {
      return yield* new FileSourceError({
        path: directory,
        line: undefined,
        reason: "not a directory: Sources.files reads the files of a directory (choose them with the glob option)"
      })
    }
    const names = yield* Effect.mapError(
      fs.readDirectory(directory, { recursive: glob.includes("/") }),
      cannotRead(directory)
    )
    // recursive listings use the platform's separator; globs always use "/"
    const candidates = names.map((n) => n.replaceAll("\\", "/")).filter((n) => pattern.test(n)).sort()
    const infos = yield* Effect.forEach(
      candidates,
      (name) => Effect.mapError(fs.stat(join(directory, name)), cannotRead(join(directory, name))),
      { concurrency: 16 }
    )
    return candidates.filter((_, i) => infos[i]!.type === "File").map((name) => join(directory, name))
  })

/** Splits the bytes of one file into lines, decoding UTF-8 strictly. */
class LineDecoder {
  /** Lines emitted so far (the line being decoded is `lineCount + 1`). */
  private lineCount = 0
  /** Decoded text of the unterminated line carried over from earlier chunks. */
  private pending = ""
  /** Whether bytes followed the last newline (a final line without a newline). */
  private partial = false
  // the BOM is stripped by hand: the decoder would strip it after every flush
  private readonly decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

  readonly path: string
  private readonly out: Array<string>

  constructor(path: string, out: Array<string>) {
    this.path = path
    this.out = out
  }

  feed(bytes: Uint8Array): void {
    const first = bytes.indexOf(NEWLINE)
    if (first === -1) {
      this.pending += this.decode(bytes, true)
      this.partial = true
      return
    }
    this.emit(this.pending + this.decode(bytes.subarray(0, first), false), true)
    this.pending = ""
    const last = bytes.lastIndexOf(NEWLINE)
    if (last > first) {
      // whole lines with the decoder flushed: one decode for all of them is much cheaper
      const lines = this.decodeLines(bytes.subarray(first + 1, last + 1)).split("\n")
      for (let i = 0; i < lines.length - 1; i++) this.emit(lines[i]!, true)
    }
    this.partial = last + 1 < bytes.length
    if (this.partial) this.pending = this.decode(bytes.subarray(last + 1), true)
  }

  end(): void {
    const rest = this.pending + this.decode(new Uint8Array(0), false)
    if (this.partial) this.emit(rest, false)
  }

  private emit(line: string, terminated: boolean): void {
    if (terminated && line.endsWith("\r")) line = line.slice(0, -1)
    if (this.lineCount === 0 && line.charCodeAt(0) === 0xfeff) line = line.slice(1)
    this.lineCount++
    this.out.push(line)
  }

  private decode(bytes: Uint8Array, stream: boolean): string {
    try {
      return this.decoder.decode(bytes, { stream })
    } catch {
      throw this.invalid(this.lineCount + 1)
    }
  }

  /** Decodes newline-terminated lines, or fails naming the first malformed one. */
  private decodeLines(bytes: Uint8Array): string {
    try {
      return this.decoder.decode(bytes)
    } catch {
      // every line starts on a character boundary, so each can be checked alone
      const single = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
      let line = this.lineCount + 1
      for (let at = 0; at < bytes.length; line++) {
        const end = bytes.indexOf(NEWLINE, at)
        try {
          single.decode(bytes.subarray(at, end))
        } catch {
          break
        }
        at = end + 1
      }
      throw this.invalid(line)
    }
  }

  private invalid(line: number) {
    return new FileSourceError({ path: this.path, line, reason: "invalid UTF-8" })
  }
}

/** Reads one file as lines, resuming after the first `skip` of them. */
const readFile = (fs: FileSystem.FileSystem, path: string, skip: number, batchSize: number) =>
  Effect.gen(function*() {
    const file = yield* Effect.mapError(fs.open(path), cannotRead(path))
    const buffer = new Uint8Array(CHUNK_SIZE)
    // decoded lines not yet pulled start at `taken`
    const lines: Array<string> = []
    const decoder = new LineDecoder(path, lines)
    let taken = 0
    let emitted = skip
    let left = skip
    let ended = false

    const readChunk = Effect.gen(function*() {
      const n = yield* Effect.mapError(file.read(buffer), cannotRead(path))
      yield* Effect.try({ try: () => (n === 0 ? decoder.end() : decoder.feed(buffer.subarray(0, n))), catch: (e) => e })
      ended = n === 0
    })

    const reader: Splits.SplitReader<string> = {
      position: () => emitted,
      pull: Effect.gen(function*() {
        while (true) {
          if (taken > 0 && lines.length - taken < batchSize) {
            lines.splice(0, taken)
            taken = 0
          }
          while (lines.length - taken < batchSize + left && !ended) yield* readChunk
          if (left > 0) {
            const skipped = Math.min(left, lines.length - taken)
            taken += skipped
            left -= skipped
          }
          if (taken === lines.length) return ended ? undefined : []
          const batch = lines.slice(taken, taken + batchSize)
          taken += batch.length
          emitted += batch.length
          return batch
        }
      })
    }
    return reader
  })

/**
 * The lines of the regular files in `directory` (not recursive unless the glob
 * says so), without their `\n` or `\r\n` terminators. Each file is a split:
 * taken in name order and dealt over the instances (file j to instance j %
 * instances), each with its own position (lines read), so a job restored with
 * another number of instances resumes every file where it was. Each file is
 * read in chunks and decoded as strict UTF-8, so malformed bytes fail the job
 * with a `FileSourceError` naming the file and line. A `directory` that is not
 * one fails likewise; a glob that matches no file logs a warning. With `watch`
 * the source is unbounded: files that appear later are new splits, dealt by a
 * hash of their path, and a restart neither rereads nor skips one.
 */
export const files = (directory: string, options?: FilesOptions): Source.Source<string, FileSystem.FileSystem> => {
  const name = options?.name ?? "files"
  const glob = options?.glob ?? "*"
  const watch = options?.watch === undefined ? undefined : Duration.toMillis(options.watch)
  return Splits.make({
    name,
    bounded: watch === undefined,
    discoverEvery: watch,
    enumerate: ({ instance, initial }) =>
      Effect.gen(function*() {
        const paths = yield* listFiles(yield* FileSystem.FileSystem, directory, glob)
        if (paths.length === 0 && instance === 0 && initial && watch === undefined) yield* Effect.logWarning(`source "${name}": no file in ${directory} matches "${glob}"`)
        return paths.map((path) => ({ id: path }))
      }),
    open: (split, position, batchSize) =>
      Effect.gen(function*() {
        return yield* readFile(yield* FileSystem.FileSystem, split.id, typeof position === "number" ? position : 0, batchSize)
      })
  })
}
