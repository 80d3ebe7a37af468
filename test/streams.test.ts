/**
 * Effect Streams in and out: `Sources.fromStream` runs a stream as a source
 * (replayable from a position), `Tributary.stream` with `Sinks.stream()`
 * hands a job's output to a stream consumer with backpressure, and stopping
 * either side releases the other.
 */
import { Context, Data, Effect, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { JobCancelledError, Pipeline, Sinks, SourceError, Sources, Stage, StageError, Tributary } from "../core/src/index.ts"

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

/** Counts how far an unbounded stream got and whether its finalizer ran. */
const naturals = () => {
  const state = { produced: 0, released: false }
  const stream = Stream.iterate(0, (n) => n + 1).pipe(
    Stream.map((n) => (state.produced = n + 1, n)),
    Stream.ensuring(Effect.sync(() => void (state.released = true)))
  )
  return { state, stream }
}

class Offset extends Context.Service<Offset, number>()("test/Offset") {}
class Unreachable extends Data.TaggedError("Unreachable")<{ readonly host: string }> {}

describe("Sources.fromStream", () => {
  it("a bounded stream reaches the sink exactly, its requirements in the pipeline's", async () => {
    const out = Sinks.collect<number>()
    const stream = Stream.unwrap(Effect.map(Effect.service(Offset), (offset) => Stream.range(offset, offset + 999).pipe(Stream.rechunk(7))))
    await Effect.runPromise(
      Tributary.run(Pipeline.from(Sources.fromStream(stream)).pipe(Stage.map((x) => x * 2), Stage.writeTo(out)), { batchSize: 64 }).pipe(
        Effect.provideService(Offset, 1)
      )
    )
    expect(out.items).toEqual(range(1, 1001).map((x) => x * 2))
  })

  it("the stream's failure fails the job with a SourceError carrying it, after the records before it", async () => {
    const out = Sinks.collect<number>()
    const stream = Stream.concat(Stream.range(0, 9), Stream.fail(new Unreachable({ host: "upstream" })))
    const error = await Effect.runPromise(Effect.flip(Tributary.run(Pipeline.from(Sources.fromStream(stream, { name: "feed" })).pipe(Stage.writeTo(out)))))
    expect(error).toBeInstanceOf(SourceError)
    expect(error).toMatchObject({ source: "feed", cause: new Unreachable({ host: "upstream" }) })
    expect(out.items).toEqual(range(0, 10))
  })

  it("cancelling a job over an unbounded stream interrupts the stream and runs its finalizer", async () => {
    const { state, stream } = naturals()
    const out = Sinks.collect<number>()
    const outcome = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(Sources.fromStream(stream)).pipe(Stage.writeTo(out)))
      while (out.items.length < 100) yield* Effect.sleep(5)
      const releasedWhileRunning = state.released
      yield* job.cancel
      return { releasedWhileRunning, joined: yield* Effect.flip(job.join) }
    })))
    expect(outcome.releasedWhileRunning).toBe(false)
    expect(state.released).toBe(true)
    expect(outcome.joined).toBeInstanceOf(JobCancelledError)
    expect(out.items.slice(0, 100)).toEqual(range(0, 100))
  })

  /** Records 0 until `n` from `from` on, a chunk every millisecond: slow enough for snapshots to complete before the crash. */
  const slowRange = (from: number, n: number) =>
    Stream.iterate(from, (p) => p + 20).pipe(
      Stream.takeWhile((p) => p < n),
      Stream.tap(() => Effect.sleep(1)),
      Stream.flatMap((p) => Stream.range(p, Math.min(n, p + 20) - 1))
    )
  const n = 2000
  it.each([
    ["the count of records read", (starts: Array<number>) =>
      Sources.fromStream((position: number) => {
        starts.push(position)
        return slowRange(position, n)
      })],
    ["a position per record", (starts: Array<number>) =>
      Sources.fromStream((next: number | undefined) => {
        starts.push(next ?? 0)
        return slowRange(next ?? 0, n)
      }, { position: (x) => x + 1 })]
  ])("a replayable stream resumes from %s after a crash: exactly-once, each record once", async (_, source) => {
    const starts: Array<number> = []
    let crashed = false
    const out = Sinks.collect<number>({ transactional: true })
    await Effect.runPromise(Tributary.run(
      Pipeline.from(source(starts)).pipe(
        Stage.map((x: number) => {
          if (x === 1500 && !crashed) {
            crashed = true
            throw new Error("injected crash")
          }
          return x
        }),
        Stage.writeTo(out)
      ),
      { processingGuarantee: "exactly-once", snapshotInterval: "10 millis", batchSize: 20 }
    ))
    expect(crashed).toBe(true)
    expect(starts).toHaveLength(2)
    expect(starts[0]).toBe(0)
    expect(starts[1]).toBeGreaterThan(0)
    expect([...out.items].sort((a, b) => a - b)).toEqual(range(0, n))
  })
})

describe("Tributary.stream", () => {
  const unbounded = () => {
    const source = naturals()
    return { ...source, pipeline: Pipeline.from(Sources.fromStream(source.stream)).pipe(Stage.map((x) => x * 10), Stage.writeTo(Sinks.stream<number>())) }
  }

  it("a consumer that stops after n records cancels the job, releasing its source", async () => {
    const { pipeline, state } = unbounded()
    const taken = await Effect.runPromise(Stream.runCollect(Tributary.stream(pipeline, { batchSize: 32 }).pipe(Stream.take(100))))
    expect(taken).toEqual(range(0, 100).map((x) => x * 10))
    expect(state.released).toBe(true)
  })

  it("a slow consumer holds the job back: the source runs a bounded distance ahead", async () => {
    const { pipeline, state } = unbounded()
    let consumed = 0
    let ahead = 0
    await Effect.runPromise(Stream.runForEachArray(
      Tributary.stream(pipeline, { batchSize: 16, queueCapacity: 1, bufferSize: 16 }).pipe(Stream.take(400)),
      (chunk) =>
        Effect.andThen(Effect.sleep(2), Effect.sync(() => {
          consumed += chunk.length
          ahead = Math.max(ahead, state.produced - consumed)
        }))
    ))
    expect(consumed).toBe(400)
    // The stream's read-ahead, the engine's queues and the output buffer: a few batches of 16.
    expect(ahead).toBeLessThan(200)
  })

  it("the job's failure is the stream's failure", async () => {
    const pipeline = Pipeline.from(Sources.fromStream(Stream.range(0, 99))).pipe(
      Stage.map((x: number) => {
        if (x === 50) throw new Error("boom")
        return x
      }),
      Stage.writeTo(Sinks.stream<number>())
    )
    const error = await Effect.runPromise(Effect.flip(Stream.runDrain(Tributary.stream(pipeline))))
    expect(error).toBeInstanceOf(StageError)
    expect(error.message).toContain("boom")
  })
})

/** Type-level: a stream sink's requirement is met by `Tributary.stream` alone, which carries its record type. */
export const typeChecks = (pipeline: Pipeline.Pipeline<never, Sinks.StreamOutput<number>>) => {
  // @ts-expect-error a pipeline ending in Sinks.stream() runs through Tributary.stream
  const ran: Effect.Effect<void, unknown, never> = Tributary.run(pipeline)
  const streamed: Stream.Stream<number, unknown, never> = Tributary.stream(pipeline)
  return [ran, streamed]
}
