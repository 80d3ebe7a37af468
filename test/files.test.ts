import { NodeFileSystem } from "@effect/platform-node"
import { Cause, Effect, Exit, FileSystem, Logger } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { FileSourceError } from "../core/src/connectors/files.ts"
import type { JobOptions } from "../core/src/job/Job.ts"
import type { Pipeline as P } from "../core/src/pipeline/Pipeline.ts"
import { Pipeline, Sink, Sinks, SourceError, Sources, Stage, StageError, Tributary } from "../core/src/index.ts"
import { rng, sorted } from "./helpers.ts"

// plain code-unit order: the helper's JSON comparator is slow on tens of thousands of lines
const sortedLines = (lines: ReadonlyArray<string>) => [...lines].sort()

const run = (pipeline: P<unknown, FileSystem.FileSystem>, options?: JobOptions) =>
  Effect.runPromise(Effect.provide(Tributary.run(pipeline, options), NodeFileSystem.layer))

const failureOf = (pipeline: P<unknown, FileSystem.FileSystem>, options?: JobOptions): Promise<unknown> =>
  Effect.runPromise(Effect.provide(Effect.flip(Tributary.run(pipeline, options)), NodeFileSystem.layer))

const tempDirs: Array<string> = []
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trib-"))
  tempDirs.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

const write = (dir: string, name: string, content: string | Uint8Array) => {
  fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
  fs.writeFileSync(path.join(dir, name), content)
}

/** Lines of a file as a reader would see them, computed without the connector. */
const linesOf = (file: string): Array<string> => {
  const lines = fs.readFileSync(file, "utf8").split(/\r?\n/)
  if (lines.at(-1) === "") lines.pop()
  if (lines[0]?.startsWith("\uFEFF")) lines[0] = lines[0].slice(1)
  return lines
}

const collectLines = async (dir: string, options?: { glob?: string } & JobOptions) => {
  const out = Sinks.collect<string>()
  await run(Pipeline.from(Sources.files(dir, { glob: options?.glob })).pipe(Stage.writeTo(out)), options)
  return out.items
}

/** Several MB-free but chunk-crossing files: long lines, \r\n and multi-byte characters on chunk edges. */
const writeMixedDirectory = (dir: string) => {
  write(dir, "a.txt", "alpha\nbeta\n\ngamma\n")
  write(dir, "b.txt", "one\r\ntwo\r\nthree")
  write(dir, "c.txt", "")
  write(dir, "d.txt", "héllo wörld\n日本語のテキスト\n😀 emoji 🎉\nlone\rcarriage\n")
  write(dir, "e.txt", "\uFEFFbom first\n\uFEFFkept on line two\n")
  // chunk edges at multiples of 64 KiB: "\r" | "\n", then "é" and "😀" split across edges
  const edge = 64 * 1024
  const edges = Buffer.concat([
    Buffer.from("x".repeat(edge - 1) + "\r\n"),
    Buffer.from("y".repeat(2 * edge - (edge + 1) - 1) + "é tail\n"),
    Buffer.from("z".repeat(3 * edge - (2 * edge + 7 + 1) - 2) + "😀 tail\r\n"),
    Buffer.from("w".repeat(200_000) + " one line over several chunks\n"),
    Buffer.from("end without newline é")
  ])
  write(dir, "f.txt", edges)
  const random = rng(42)
  const pieces = ["a", "b", " ", "é", "ß", "日本", "😀", "\n", "\r\n", "\n", "word"]
  let big = ""
  while (big.length < 300_000) big += pieces[Math.floor(random() * pieces.length)]
  write(dir, "g.txt", big)
}

const expectedLines = (dir: string, names: ReadonlyArray<string>) => names.flatMap((n) => linesOf(path.join(dir, n)))

describe("files source", () => {
  it("reads every line of every file, in name order with one instance", async () => {
    const dir = tempDir()
    writeMixedDirectory(dir)
    const expected = expectedLines(dir, ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt", "g.txt"])
    expect(expected).toContain("three")
    expect(expected).toContain("bom first")
    expect(expected).toContain("\uFEFFkept on line two")
    expect(expected).toContain("lone\rcarriage")
    expect(await collectLines(dir, { parallelism: 1 })).toEqual(expected)
  })

  it.each([2, 3])("spreads the files over %i instances without losing or duplicating a line", async (parallelism) => {
    const dir = tempDir()
    writeMixedDirectory(dir)
    const expected = expectedLines(dir, ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt", "g.txt"])
    expect(sortedLines(await collectLines(dir, { parallelism, batchSize: 100 }))).toEqual(sortedLines(expected))
  })

  it("emits batches of at most batchSize lines and reads in bounded chunks", async () => {
    const dir = tempDir()
    write(dir, "big.txt", Array.from({ length: 100_000 }, (_, i) => `line ${i}`).join("\n"))
    const batches: Array<number> = []
    const reads: Array<number> = []
    let wholeFileReads = 0
    const spy = Effect.gen(function*() {
      const real = yield* FileSystem.FileSystem
      const counted = <A>(effect: A) => {
        wholeFileReads++
        return effect
      }
      return {
        ...real,
        readFile: (p: string) => counted(real.readFile(p)),
        readFileString: (p: string, encoding?: string) => counted(real.readFileString(p, encoding)),
        open: (p: string, options?: Parameters<typeof real.open>[1]) =>
          Effect.map(real.open(p, options), (file) =>
            Object.assign(Object.create(file) as FileSystem.File, {
              read: (buffer: Uint8Array, o?: FileSystem.File.ReadOptions) => {
                reads.push(buffer.length)
                return file.read(buffer, o)
              },
              readAlloc: (size: number, o?: FileSystem.File.ReadOptions) => {
                reads.push(size)
                return file.readAlloc(size, o)
              }
            }))
      } satisfies FileSystem.FileSystem
    })
    const sink = Sink.make<string>({
      name: "batches",
      open: () => Effect.succeed({ write: (batch) => Effect.sync(() => void batches.push(batch.length)) })
    })
    await Effect.runPromise(
      Effect.gen(function*() {
        const fsSpy = yield* spy
        yield* Effect.provideService(
          Tributary.run(Pipeline.from(Sources.files(dir)).pipe(Stage.writeTo(sink)), { batchSize: 500 }),
          FileSystem.FileSystem,
          fsSpy
        )
      }).pipe(Effect.provide(NodeFileSystem.layer))
    )
    expect(batches.reduce((a, b) => a + b, 0)).toBe(100_000)
    expect(Math.max(...batches)).toBeLessThanOrEqual(500)
    expect(wholeFileReads).toBe(0)
    const size = fs.statSync(path.join(dir, "big.txt")).size
    expect(reads.length).toBeGreaterThan(4)
    expect(Math.max(...reads)).toBeLessThanOrEqual(size / 4)
  })

  it("glob selects files by name; only a glob with a path recurses; hidden files are skipped", async () => {
    const dir = tempDir()
    write(dir, "a.txt", "a\n")
    write(dir, "b.log", "b\n")
    write(dir, "cc.log", "cc\n")
    write(dir, ".hidden.txt", "hidden\n")
    write(dir, "sub/c.txt", "c\n")
    write(dir, "sub/deeper/d.txt", "d\n")
    write(dir, ".git/e.txt", "e\n")
    const read = async (glob?: string) => sortedLines(await collectLines(dir, { glob }))
    expect(await read()).toEqual(["a", "b", "cc"])
    expect(await read("*.txt")).toEqual(["a"])
    expect(await read("?.log")).toEqual(["b"])
    expect(await read("*.l?g")).toEqual(["b", "cc"])
    expect(await read("sub/*.txt")).toEqual(["c"])
    expect(await read("**/*.txt")).toEqual(["a", "c", "d"])
    expect(await read(".hidden.txt")).toEqual(["hidden"])
    expect(await read("*.csv")).toEqual([])
  })

  const bad = (s: string) => Buffer.from(s.replace("<BAD>", "\u0000"), "utf8").map((b) => (b === 0 ? 0xff : b))

  it.each([
    { where: "in the first line", content: bad("o<BAD>k\nfine\n"), line: 1 },
    { where: "among whole lines", content: bad("ok\nfine\nbad <BAD> here\nmore\n"), line: 3 },
    { where: "in a final line without newline", content: bad("ok\nfine\nbad <BAD>"), line: 3 },
    {
      where: "as a truncated character at the end",
      content: Buffer.concat([Buffer.from("ok\nfine\nlast "), Buffer.from("é").subarray(0, 1)]),
      line: 3
    },
    {
      where: "after the first chunk",
      content: bad(Array.from({ length: 20_000 }, (_, i) => (i === 15_000 ? "bad <BAD>" : `line ${i}`)).join("\n")),
      line: 15_001
    }
  ])("malformed UTF-8 $where fails with the path and line", async ({ content, line }) => {
    const dir = tempDir()
    write(dir, "a-good.txt", "fine\n")
    write(dir, "b-bad.txt", content)
    const error = await failureOf(Pipeline.from(Sources.files(dir, { name: "logs" })).pipe(Stage.writeTo(Sinks.collect())))
    expect(error).toBeInstanceOf(SourceError)
    expect((error as SourceError).source).toBe("logs")
    const cause = (error as SourceError).cause
    expect(cause).toBeInstanceOf(FileSourceError)
    expect(cause).toMatchObject({ path: `${dir}/b-bad.txt`, line, reason: "invalid UTF-8" })
    expect((error as SourceError).message).toContain(`b-bad.txt:${line}: invalid UTF-8`)
  })

  it("a missing directory, or a file given as one, fails with an error naming it; the platform's detail is said once", async () => {
    const dir = path.join(tempDir(), "does-not-exist")
    const exit = await Effect.runPromise(Effect.provide(Effect.exit(Tributary.run(Pipeline.from(Sources.files(dir)).pipe(Stage.writeTo(Sinks.collect())))), NodeFileSystem.layer))
    const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
    expect(error).toBeInstanceOf(SourceError)
    expect((error as SourceError).cause).toBeInstanceOf(FileSourceError)
    expect((error as SourceError).cause).toMatchObject({ path: dir, line: undefined, reason: "no such directory" })
    expect((error as SourceError).message).toBe(`source "files" failed: ${dir}: no such directory (NotFound)`)
    // The rendered cause chain: each error adds its own part, the platform's message is not repeated by the ones above it.
    const rendered = String((exit as Exit.Failure<unknown, unknown>).cause)
    expect(rendered.split("FileSystem.stat").length - 1).toBe(1)
    expect(rendered.split("no such directory (NotFound)").length - 1).toBe(2)

    const file = path.join(tempDir(), "lines.txt")
    fs.writeFileSync(file, "a\n")
    const notDirectory = await failureOf(Pipeline.from(Sources.files(file)).pipe(Stage.writeTo(Sinks.collect())))
    expect((notDirectory as SourceError).cause).toMatchObject({ path: file, reason: expect.stringMatching(/^not a directory: Sources.files reads the files of a directory/) })
  })

  it("a glob that matches no file reads nothing and logs a warning", async () => {
    const dir = tempDir()
    write(dir, "a.txt", "a\n")
    const warnings: Array<unknown> = []
    const capture = Logger.make((options) => {
      if (options.logLevel === "Warn") warnings.push(options.message)
    })
    const out = Sinks.collect<string>()
    await Effect.runPromise(Tributary.run(Pipeline.from(Sources.files(dir, { glob: "*.csv" })).pipe(Stage.writeTo(out)), { parallelism: 2 }).pipe(
      Effect.provide(NodeFileSystem.layer),
      Effect.provide(Logger.layer([capture]))
    ))
    expect(out.items).toEqual([])
    expect(warnings.flat()).toEqual([`source "files": no file in ${dir} matches "*.csv"`])
  })
})

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** Lines of every part file of a sink directory. */
const partLines = (dir: string) =>
  fs.readdirSync(dir).filter((n) => n.startsWith("part-")).flatMap((n) => linesOf(path.join(dir, n)))

/** Opens an instance of a directory sink on `dir` by hand and runs `body` with its writer. */
/** The directory's files but the sink's fencing epoch, which it keeps until the job completes. */
const listing = (dir: string) => fs.readdirSync(dir).filter((f) => f !== ".tributary-epoch").sort()

const instanceOf = (dir: string) => {
  const sink = Sinks.directory<string>(dir)
  return (ctx: Sink.SinkContext, body: (writer: Sink.SinkWriter<string>) => Effect.Effect<void, unknown>) =>
    Effect.runPromise(Effect.scoped(Effect.flatMap(sink.open(ctx), body)).pipe(Effect.provide(NodeFileSystem.layer)) as Effect.Effect<void, unknown>)
}

describe("directory sink", () => {
  it("writes one part file per instance whose lines together are the input", async () => {
    const dir = path.join(tempDir(), "out", "nested")
    const input = range(5000).map((i) => ({ id: i, text: `record ${i} é` }))
    await run(Pipeline.from(Sources.fromIterable(input)).pipe(Stage.writeTo(Sinks.directory(dir))), {
      parallelism: 2,
      batchSize: 128
    })
    expect(fs.readdirSync(dir).sort()).toEqual(["part-00000", "part-00001"]) // a completed job leaves no epoch
    const lines = partLines(dir)
    expect(sorted(lines.map((l) => JSON.parse(l)), (a, b) => a.id - b.id)).toEqual(input)
    expect(linesOf(path.join(dir, "part-00000")).length).toBeGreaterThan(0)
    expect(linesOf(path.join(dir, "part-00001")).length).toBeGreaterThan(0)
  })

  it("owns its part files: a run with fewer instances leaves none of an earlier run's parts behind", async () => {
    const dir = tempDir()
    fs.writeFileSync(path.join(dir, "README"), "not the sink's")
    await run(Pipeline.from(Sources.fromIterable(range(7).map(String))).pipe(Stage.writeTo(Sinks.directory(dir))), { parallelism: 2 })
    expect(fs.readdirSync(dir).sort()).toEqual(["README", "part-00000", "part-00001"])
    await run(Pipeline.from(Sources.fromIterable(range(5).map(String))).pipe(Stage.writeTo(Sinks.directory(dir))), { parallelism: 1 })
    expect(fs.readdirSync(dir).sort()).toEqual(["README", "part-00000"])
    expect(sortedLines(partLines(dir))).toEqual(sortedLines(range(5).map(String)))
  })

  it("after a rescale to fewer instances, commits the transactions of instances gone up to the restored snapshot and drops later ones", async () => {
    const dir = tempDir()
    const use = instanceOf(dir)
    // Instance 2 of 3 prepares snapshots 5 and 6, then its member dies before any commit.
    await use({ instance: 2, instances: 3 }, (w) =>
      Effect.gen(function*() {
        yield* w.write(["covered by 5"])
        yield* w.prepare!(5)
        yield* w.write(["after 5"])
        yield* w.prepare!(6)
      }))
    // The job restarts from snapshot 5 with 2 instances: instance 0 answers for part 2 (2 mod 2).
    await use({ instance: 1, instances: 2, restoredSnapshot: 5 }, () => Effect.void)
    expect(fs.readdirSync(dir).filter((f) => !f.startsWith(".")).sort()).toEqual([])
    await use({ instance: 0, instances: 2, restoredSnapshot: 5 }, () => Effect.void)
    expect(listing(dir)).toEqual(["part-00002-000000000005"])
    expect(linesOf(path.join(dir, "part-00002-000000000005"))).toEqual(["covered by 5"])
  })

  it("is fenced: an instance of an older execution cannot commit once a newer one opened the sink", async () => {
    const dir = tempDir()
    const use = instanceOf(dir)
    const exit = await use({ instance: 0, instances: 1, execution: 1 }, (old) =>
      Effect.gen(function*() {
        yield* old.write(["by the old execution"])
        yield* old.prepare!(5)
        // A newer execution restores while the old one still runs (its member was cut off).
        yield* Effect.promise(() => use({ instance: 0, instances: 1, execution: 2, restoredSnapshot: 4 }, () => Effect.void))
        return yield* old.commit!(5)
      })).then(() => undefined, (e) => e)
    expect(exit).toMatchObject({ _tag: "FencedError", sink: "directory", execution: 1, newest: 2 })
    // The newer execution aborted the transaction the restored snapshot does not cover.
    expect(listing(dir)).toEqual([])
  })

  it("restored from an older snapshot than its newest commit (a newer one was damaged), withdraws the parts committed after it", async () => {
    const dir = tempDir()
    const use = instanceOf(dir)
    await use({ instance: 0, instances: 1 }, (w) =>
      Effect.gen(function*() {
        for (const id of [5, 6]) {
          yield* w.write([`covered by ${id}`])
          yield* w.prepare!(id)
          yield* w.commit!(id)
        }
      }))
    // Its records replay from snapshot 5: the part of 6 would repeat them.
    await use({ instance: 0, instances: 1, restoredSnapshot: 5 }, () => Effect.void)
    expect(listing(dir)).toEqual(["part-00000-000000000005"])
  })

  it("shows only a hidden temp file while running and removes it when the job fails", async () => {
    const dir = tempDir()
    let seenWhileRunning: Array<string> = []
    let tempSizeWhileRunning = 0
    const error = await failureOf(
      Pipeline.from(Sources.fromIterable(range(1000))).pipe(
        Stage.map((i) => {
          if (i === 500) {
            seenWhileRunning = listing(dir)
            tempSizeWhileRunning = fs.statSync(path.join(dir, ".part-00000.tmp")).size
          }
          if (i === 700) throw new Error("boom")
          return `line ${i}`
        }),
        Stage.writeTo(Sinks.directory(dir))
      ),
      { parallelism: 1, batchSize: 50 }
    )
    expect(error).toBeInstanceOf(StageError)
    expect(seenWhileRunning).toEqual([".part-00000.tmp"])
    expect(tempSizeWhileRunning).toBeGreaterThan(0)
    expect(listing(dir)).toEqual([])
  })

  it("removes its temp files when the job is cancelled", async () => {
    const dir = tempDir()
    const temps = [".part-00000.tmp", ".part-00001.tmp"]
    await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const job = yield* Tributary.submit(
          Pipeline.from(Sources.generator({ make: (i) => `line ${i}`, itemsPerSecond: 2000 })).pipe(
            Stage.writeTo(Sinks.directory(dir))
          ),
          { parallelism: 2, batchSize: 10 }
        )
        const written = () => temps.every((t) => fs.existsSync(path.join(dir, t)) && fs.statSync(path.join(dir, t)).size > 0)
        for (let waited = 0; !written(); waited += 5) {
          if (waited > 1000) throw new Error(`no temp files written: ${fs.readdirSync(dir)}`)
          yield* Effect.sleep(5)
        }
        yield* job.cancel
        expect(yield* job.status).toBe("cancelled")
      })).pipe(Effect.provide(NodeFileSystem.layer))
    )
    expect(listing(dir)).toEqual([])
  })

  it("round-trips: files source, map, directory sink", async () => {
    const input = tempDir()
    writeMixedDirectory(input)
    const output = path.join(tempDir(), "out")
    await run(
      Pipeline.from(Sources.files(input)).pipe(
        Stage.map((line: string) => ({ length: line.length, line })),
        Stage.writeTo(Sinks.directory(output, { format: (r) => `${r.length}\t${r.line.toUpperCase()}` }))
      ),
      { parallelism: 3, batchSize: 256 }
    )
    expect(fs.readdirSync(output).sort()).toEqual(["part-00000", "part-00001", "part-00002"])
    const expected = expectedLines(input, ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt", "g.txt"])
      .map((l) => `${l.length}\t${l.toUpperCase()}`)
    // the output goes back through the source, so its files must read as the lines written
    expect(sortedLines(await collectLines(output, { parallelism: 2 }))).toEqual(sortedLines(expected))
  })
})
