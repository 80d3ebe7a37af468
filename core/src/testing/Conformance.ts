/**
 * The conformance suite every connector passes against its real server (in
 * the spirit of Flink's `SourceTestSuiteBase` / `SinkTestSuiteBase`): a plugin's
 * test file calls `source` or `sink` with its test framework's functions and a
 * description of how to put records into (or read them back from) its system.
 * Records are strings, so every system can carry them; each check fails when
 * the behaviour it names breaks.
 */
import { Effect, type Layer } from "effect"
import type { JobOptions } from "../job/Job.ts"
import * as Tributary from "../job/Job.ts"
import * as Pipeline from "../pipeline/Pipeline.ts"
import * as Sink from "../pipeline/Sink.ts"
import type { Source } from "../pipeline/Source.ts"
import * as Stage from "../pipeline/Stage.ts"
import * as Sinks from "../connectors/Sinks.ts"
import * as Sources from "../connectors/Sources.ts"
import * as SnapshotStore from "../snapshot/SnapshotStore.ts"

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
}

export interface SourceSystem<R> extends System<R> {
  /** Puts `records` into a fresh place in the system and returns a bounded, replayable source of them. */
  readonly source: (records: ReadonlyArray<string>) => Effect.Effect<Source<string, R>, unknown, R>
  /** Its positions are per split: it restores with another number of instances. */
  readonly rescalable?: boolean | undefined
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

    api.it(`restored after crashes at random points (${SEEDS.length} seeds), exactly-once: no loss, no duplicate`, () =>
      runIn(system, sessionsKept(api, system, Effect.gen(function*() {
        for (const seed of SEEDS) {
          const next = random(seed)
          const records = input(N)
          const { items, restarts } = yield* readAll(yield* system.source(records), exactly({ parallelism: 1 + (seed % 3), batchSize: 16 }), crashAt(1 + Math.floor(next() * N)))
          api.expect(restarts).toBe(1)
          api.expect(sorted(items)).toEqual(sorted(records))
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
  })
