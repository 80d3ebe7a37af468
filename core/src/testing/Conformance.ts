/**
 * The conformance suite every connector passes against its real server (in
 * the spirit of Flink's `SourceTestSuiteBase` / `SinkTestSuiteBase`): a plugin's
 * test file calls `source` or `sink` with its test framework's functions and a
 * description of how to put records into (or read them back from) its system.
 * Records are strings, so every system can carry them; each check fails when
 * the behaviour it names breaks.
 */
import { type Duration, Effect, type Layer, Schema } from "effect"
import * as Aggregate from "../aggregate/Aggregate.ts"
import type { JobOptions } from "../job/Job.ts"
import * as Tributary from "../job/Job.ts"
import * as Pipeline from "../pipeline/Pipeline.ts"
import * as Sink from "../pipeline/Sink.ts"
import type { Source } from "../pipeline/Source.ts"
import * as Stage from "../pipeline/Stage.ts"
import * as Sinks from "../connectors/Sinks.ts"
import * as Sources from "../connectors/Sources.ts"
import * as SnapshotStore from "../snapshot/SnapshotStore.ts"
import * as Window from "../window/Window.ts"

/** The parts of vitest (or a framework like it) the suite uses. */
export interface TestApi {
  readonly describe: (name: string, body: () => void) => void
  readonly it: (name: string, body: () => Promise<void>, timeout?: number) => void
  readonly expect: (actual: unknown) => {
    readonly toEqual: (expected: unknown) => void
    readonly toBe: (expected: unknown) => void
    readonly toBeGreaterThan: (n: number) => void
  }
}

interface System<R> {
  /** Shown in the suite's name. */
  readonly name: string
  /** What the connector's effects need (its client, a file system). */
  readonly layer: Layer.Layer<R, unknown>
  /** Connections the server holds open now, if it can tell: closing any job must leave them as they were. */
  readonly sessions?: Effect.Effect<number, unknown, R> | undefined
  /**
   * Restarts the server (returns once it accepts connections again): a job
   * running across the restart must recover by itself. Leave it out where the
   * server is shared with others.
   */
  readonly restart?: Effect.Effect<void, unknown, R> | undefined
}

export interface SourceSystem<R> extends System<R> {
  /** Puts `records` into a fresh place in the system and returns a bounded, replayable source of them. */
  readonly source: (records: ReadonlyArray<string>) => Effect.Effect<Source<string, R>, unknown, R>
  /** Its positions are per split: it restores with another number of instances. */
  readonly rescalable?: boolean | undefined
  /** Exactly-once (replayable: it restores at its positions; the default) or at-least-once (a restore may repeat records). */
  readonly guarantee?: "exactly-once" | "at-least-once" | undefined
  /**
   * Puts each list of records into a split of its own (a file, a partition), in
   * order, and returns a source of them: bounded, or unbounded (it then waits
   * for more and never ends). For the checks of event time per split.
   */
  readonly splits?: ((perSplit: ReadonlyArray<ReadonlyArray<string>>, options: { readonly bounded: boolean }) => Effect.Effect<Source<string, R>, unknown, R>) | undefined
}

export interface SinkSystem<R> extends System<R> {
  /** A sink into a fresh place in the system, and how to read back what it committed there. */
  readonly sink: () => Effect.Effect<{ readonly sink: Sink.Sink<string, R>; readonly committed: Effect.Effect<ReadonlyArray<string>, unknown, R> }, unknown, R>
  readonly guarantee: "exactly-once" | "at-least-once"
}

const SEEDS = [1, 2, 3, 4, 5]
const N = 2000

const input = (n: number) => Array.from({ length: n }, (_, i) => `record-${i}`)
const sorted = (xs: ReadonlyArray<string>) => [...xs].sort()

/** A deterministic pseudo-random sequence in [0, 1) per seed. */
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

/** Throws once, at its `at`-th call. */
const crashAt = (at: number) => {
  let calls = 0
  return (what: string) => {
    if (++calls === at) throw new Error(`injected crash in ${what} (call ${at})`)
  }
}

const runIn = <R>(system: System<R>, effect: Effect.Effect<void, unknown, R>) =>
  Effect.runPromise(Effect.provide(effect, system.layer) as Effect.Effect<void, unknown>)

/** Every job closed leaves the server's sessions where they were. */
const sessionsKept = <R>(api: TestApi, system: System<R>, run: Effect.Effect<void, unknown, R>) =>
  Effect.gen(function*() {
    const before = system.sessions ? yield* system.sessions : undefined
    yield* run
    if (system.sessions) api.expect(yield* system.sessions).toBe(before)
  })

const exactly = (options: JobOptions): JobOptions => ({ processingGuarantee: "exactly-once", snapshotInterval: "5 millis", ...options })

/** The checks of a source, against its system. */
export const source = <R>(api: TestApi, system: SourceSystem<R>): void =>
  api.describe(`${system.name}: source conformance`, () => {
    const exactlyOnce = system.guarantee !== "at-least-once"
    /** What a job reading `src` committed, and how often it restarted. */
    const readAll = (src: Source<string, R>, options: JobOptions, crash?: (what: string) => void) =>
      Effect.scoped(Effect.gen(function*() {
        const out = Sinks.collect<string>({ transactional: true })
        const job = yield* Tributary.submit(Pipeline.from(src).pipe(
          Stage.map((r: string) => {
            crash?.("a stage after the source")
            return r
          }),
          Stage.writeTo(out)
        ), options)
        yield* job.join
        return { items: out.items, restarts: (yield* job.metrics).restarts }
      }))

    for (const parallelism of [1, 3]) {
      api.it(`a bounded read at parallelism ${parallelism} is the input, each record once; its connections are closed after`, () =>
        runIn(system, sessionsKept(api, system, Effect.gen(function*() {
          const records = input(N)
          api.expect(sorted((yield* readAll(yield* system.source(records), { parallelism })).items)).toEqual(sorted(records))
        }))), 60_000)
    }

    api.it(`restored after crashes at random points (${SEEDS.length} seeds), ${exactlyOnce ? "exactly-once: no loss, no duplicate" : "at-least-once: no loss"}`, () =>
      runIn(system, sessionsKept(api, system, Effect.gen(function*() {
        for (const seed of SEEDS) {
          const next = random(seed)
          const records = input(N)
          const { items, restarts } = yield* readAll(yield* system.source(records), exactly({ parallelism: 1 + (seed % 3), batchSize: 16 }), crashAt(1 + Math.floor(next() * N)))
          api.expect(restarts).toBe(1)
          api.expect(sorted(exactlyOnce ? items : [...new Set(items)])).toEqual(sorted(records))
        }
      }))), 120_000)

    api.it("cancelled mid-read, closes its connections", () =>
      runIn(system, sessionsKept(api, system, Effect.scoped(Effect.gen(function*() {
        const src = yield* system.source(input(N))
        const job = yield* Tributary.submit(Pipeline.from(src).pipe(
          Stage.mapEffect((r: string) => Effect.as(Effect.sleep(1), r)),
          Stage.writeTo(Sinks.collect<string>())
        ))
        yield* Effect.sleep(20)
        yield* job.cancel
      })))), 60_000)

    api.it("a record that fails decoding reaches the dead-letter sink with its payload and origin; the others go on", () =>
      runIn(system, Effect.scoped(Effect.gen(function*() {
        const records = input(N).map((r, i) => (i % 97 === 5 ? `poison-${i}` : JSON.stringify({ r })))
        const dead = Sinks.collect<Stage.DeadLetter>()
        const out = Sinks.collect<{ readonly r: string }>()
        yield* Tributary.run(Pipeline.from(yield* system.source(records)).pipe(
          Stage.decode(Schema.fromJsonString(Schema.Struct({ r: Schema.String })), { deadLetters: dead }),
          Stage.writeTo(out)
        ))
        api.expect(sorted(dead.items.map((d) => String(d.record)))).toEqual(sorted(records.filter((r) => r.startsWith("poison"))))
        // Where it came from: its split (a split's first batch has no position yet), or the source's position.
        api.expect(dead.items.every((d) => (d.split !== undefined || d.position !== undefined) && d.error.message.length > 0)).toBe(true)
        api.expect(out.items.length).toBe(records.length - dead.items.length)
      }))), 60_000)

    if (system.restart) {
      const restart = system.restart
      api.it(`the server restarted mid-read: the job recovers by itself, ${exactlyOnce ? "each record once" : "no record lost"}`, () =>
        runIn(system, Effect.scoped(Effect.gen(function*() {
          const records = input(N)
          const out = Sinks.collect<string>({ transactional: true })
          let seen = 0
          const job = yield* Tributary.submit(Pipeline.from(yield* system.source(records)).pipe(
            Stage.mapEffect((r: string) => Effect.as(Effect.sleep(1), r), { concurrency: 8 }),
            Stage.map((r) => {
              seen++
              return r
            }),
            Stage.writeTo(out)
          ), exactly({ batchSize: 16, snapshotInterval: "50 millis" }))
          while (seen < N / 4) yield* Effect.sleep(5)
          yield* restart
          yield* job.join
          api.expect(sorted(exactlyOnce ? out.items : [...new Set(out.items)])).toEqual(sorted(records))
        }))), 180_000)
    }

    if (system.splits) {
      const splits = system.splits
      /** Events at times `from` … `to` − 1, as records. */
      const events = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `event-${from + i}`)
      const time = (r: string) => Number(r.slice("event-".length))
      /** Counts per 1000 ms window of `src`'s events, with no allowed lag: only per-split watermarks keep them on time. */
      const windowed = (src: Source<string, R>, idleTimeout?: Duration.Input) => {
        const out = Sinks.collect<Stage.WindowResult<undefined, number>>()
        const pipeline = Pipeline.from(src).pipe(
          Stage.withTimestamps(time, { allowedLag: 0, idleTimeout }),
          Stage.window(Window.tumbling(1000)),
          Stage.aggregate(Aggregate.counting()),
          Stage.writeTo(out)
        )
        return { out, pipeline }
      }

      api.it("per-split watermarks: a split far ahead of another makes none of its events late; windows are exact", () =>
        runIn(system, Effect.scoped(Effect.gen(function*() {
          const { out, pipeline } = windowed(yield* splits([events(2000, 3000), events(0, 1000), events(1000, 2000)], { bounded: true }))
          const job = yield* Tributary.submit(pipeline, { batchSize: 64 })
          yield* job.join
          api.expect((yield* job.metrics).instances.reduce((n, m) => n + m.lateEvents, 0)).toBe(0)
          api.expect(out.items.map((w) => [w.start, w.value])).toEqual([[0, 1000], [1000, 1000], [2000, 1000]])
        }))), 60_000)

      api.it("an unbounded read delivers its splits' records, and an idle split does not stall windows", () =>
        runIn(system, sessionsKept(api, system, Effect.scoped(Effect.gen(function*() {
          const { out, pipeline } = windowed(yield* splits([events(0, 1500), [], events(1500, 2500)], { bounded: false }), "100 millis")
          const job = yield* Tributary.submit(pipeline, { batchSize: 64 })
          // The window [1000, 2000) closes once 2000 is seen on the busy splits, whatever the empty one does.
          for (let waited = 0; out.items.length < 2 && waited < 30_000; waited += 20) yield* Effect.sleep(20)
          yield* job.cancel
          api.expect(out.items.slice(0, 2).map((w) => [w.start, w.value])).toEqual([[0, 1000], [1000, 1000]])
        })))), 60_000)
    }

    if (system.rescalable) {
      api.it("rescaled 3 → 2 → 5 instances across exported snapshots: each record once", () =>
        runIn(system, Effect.gen(function*() {
          const records = input(N)
          const src = yield* system.source(records)
          const store = SnapshotStore.memory()
          let seen = 0
          const outs = [0, 1, 2].map(() => Sinks.collect<string>({ transactional: true }))
          const pipeline = (i: number) => Pipeline.from(src).pipe(
            Stage.mapEffect((r: string) => Effect.as(Effect.sleep(1), r), { concurrency: 4 }),
            Stage.map((r) => {
              seen++
              return r
            }),
            Stage.writeTo(outs[i]!)
          )
          const options = (parallelism: number, initialSnapshot?: string): JobOptions =>
            ({ parallelism, batchSize: 16, processingGuarantee: "exactly-once", snapshotInterval: "1 hour", snapshotStore: store, initialSnapshot })
          yield* Effect.scoped(Effect.gen(function*() {
            for (const [i, parallelism, from, upTo] of [[0, 3, undefined, N / 3], [1, 2, "at-0", (2 * N) / 3]] as const) {
              const job = yield* Tributary.submit(pipeline(i), options(parallelism, from))
              while (seen < upTo) yield* Effect.sleep(2)
              yield* job.exportSnapshot(`at-${i}`)
              yield* job.cancel
            }
            yield* (yield* Tributary.submit(pipeline(2), options(5, "at-1"))).join
          }))
          api.expect(sorted(outs.flatMap((o) => o.items))).toEqual(sorted(records))
        })), 120_000)
    }
  })

/** The checks of a sink, against its system. */
export const sink = <R>(api: TestApi, system: SinkSystem<R>): void =>
  api.describe(`${system.name}: sink conformance`, () => {
    const write = (target: Sink.Sink<string, R>, records: ReadonlyArray<string>, options: JobOptions, crash?: (what: string) => void) =>
      Tributary.run(Pipeline.from(Sources.fromIterable(records)).pipe(
        Stage.map((r: string) => {
          crash?.("a stage before the sink")
          return r
        }),
        Stage.writeTo(target)
      ), options)

    api.it("a bounded write commits the input, each record once; its connections are closed after", () =>
      runIn(system, sessionsKept(api, system, Effect.gen(function*() {
        const records = input(N)
        const { sink, committed } = yield* system.sink()
        yield* write(sink, records, { parallelism: 2 })
        api.expect(sorted(yield* committed)).toEqual(sorted(records))
      }))), 60_000)

    api.it("a bounded write with snapshots commits its final transactions without a restart; its connections are closed after", () =>
      runIn(system, sessionsKept(api, system, Effect.gen(function*() {
        const records = input(N)
        const { sink, committed } = yield* system.sink()
        const job = yield* Tributary.submit(Pipeline.from(Sources.fromIterable(records)).pipe(Stage.writeTo(sink)), exactly({ parallelism: 2, batchSize: 64 }))
        yield* job.join
        api.expect((yield* job.metrics).restarts).toBe(0)
        api.expect(sorted(yield* committed)).toEqual(sorted(records))
      }).pipe(Effect.scoped))), 60_000)

    api.it(`crashes at random points and between prepare and commit (${SEEDS.length} seeds): ${system.guarantee === "exactly-once" ? "each record once" : "no record lost"}`, () =>
      runIn(system, sessionsKept(api, system, Effect.gen(function*() {
        for (const seed of SEEDS) {
          const next = random(seed)
          const records = input(N)
          const { sink, committed } = yield* system.sink()
          const inCommit = crashAt(1 + Math.floor(next() * 4))
          // The snapshot is stored, its transactions not yet committed: the restore must commit them.
          const failingCommits = Sink.make<string, R>({
            name: sink.name,
            open: (ctx) =>
              Effect.map(sink.open(ctx), (writer) => ({
                ...writer,
                commit: writer.commit && ((id: number) => Effect.andThen(Effect.sync(() => inCommit("commit")), writer.commit!(id)))
              })) as Effect.Effect<Sink.SinkWriter<string>, unknown, R>
          })
          yield* write(failingCommits, records, exactly({ parallelism: 1 + (seed % 3), batchSize: 16 }), crashAt(1 + Math.floor(next() * N)))
          const back = yield* committed
          if (system.guarantee === "exactly-once") api.expect(sorted(back)).toEqual(sorted(records))
          else api.expect(sorted([...new Set(back)])).toEqual(sorted(records))
        }
      }))), 120_000)

    if (system.restart) {
      const restart = system.restart
      api.it(`the server restarted mid-write: the job recovers by itself, ${system.guarantee === "exactly-once" ? "each record once" : "no record lost"}`, () =>
        runIn(system, Effect.scoped(Effect.gen(function*() {
          const records = input(N)
          const { sink, committed } = yield* system.sink()
          let seen = 0
          const job = yield* Tributary.submit(Pipeline.from(Sources.fromIterable(records)).pipe(
            Stage.mapEffect((r: string) => Effect.as(Effect.sleep(1), r), { concurrency: 8 }),
            Stage.map((r) => {
              seen++
              return r
            }),
            Stage.writeTo(sink)
          ), exactly({ batchSize: 16, snapshotInterval: "50 millis" }))
          while (seen < N / 4) yield* Effect.sleep(5)
          yield* restart
          yield* job.join
          const back = yield* committed
          api.expect(sorted(system.guarantee === "exactly-once" ? back : [...new Set(back)])).toEqual(sorted(records))
        }))), 180_000)
    }
  })
