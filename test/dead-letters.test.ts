/**
 * Typed records and bad input: `Stage.decode` with a Schema, dead letters of
 * records that do not decode and of poison records, and the job's failure
 * naming them without a dead-letter sink.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Effect, type FileSystem, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, expectTypeOf, it } from "vitest"
import { Pipeline, Sinks, Sources, Stage, StageError, Tributary } from "../core/src/index.ts"
import type { JobOptions } from "../core/src/job/Job.ts"
import type { Pipeline as P } from "../core/src/pipeline/Pipeline.ts"
import { failureOf } from "./helpers.ts"

const Order = Schema.Struct({ id: Schema.Number, item: Schema.String })
type Order = typeof Order.Type

const raw: ReadonlyArray<unknown> = [
  { id: 1, item: "tea" },
  { id: "two", item: "milk" },
  { id: 3, item: "bread" },
  { id: 4, item: "jam" },
  { id: 5 },
  { id: 6, item: "salt" }
]
const bad = [1, 4]

/** Runs `pipeline` and returns the total of `deadLetters` in its metrics. */
const deadLetterCount = (pipeline: P<unknown, any>, options?: JobOptions) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const job = yield* Tributary.submit(pipeline, options)
    yield* job.join
    const metrics = yield* job.metrics
    return metrics.instances.reduce((n, m) => n + m.deadLetters, 0)
  })).pipe(Effect.provide(NodeFileSystem.layer)) as Effect.Effect<number>)

describe("Stage.decode", () => {
  it("gives records the schema's type and values", async () => {
    const out = Sinks.collect<Order>()
    const decoded = Pipeline.from(Sources.fromIterable(raw.filter((_, i) => !bad.includes(i)))).pipe(Stage.decode(Order))
    expectTypeOf(decoded).toEqualTypeOf<Stage.Stage<Order>>()
    // @ts-expect-error a field the schema does not have
    decoded.pipe(Stage.map((o) => o.price))
    // The source's requirements stay requirements, not errors.
    expectTypeOf(Pipeline.from(Sources.files("in")).pipe(Stage.decode(Schema.fromJsonString(Order))))
      .toEqualTypeOf<Stage.Stage<Order, Stage.Unkeyed, never, FileSystem.FileSystem>>()
    await Effect.runPromise(Tributary.run(decoded.pipe(Stage.map((o) => ({ ...o, id: o.id * 10 })), Stage.writeTo(out))))
    expect(out.items).toEqual([{ id: 10, item: "tea" }, { id: 30, item: "bread" }, { id: 40, item: "jam" }, { id: 60, item: "salt" }])
  })

  it("sends records that do not decode to the dead-letter sink, with payload, position and parse error; good ones go on", async () => {
    const out = Sinks.collect<Order>()
    const dead = Sinks.collect<Stage.DeadLetter>()
    const count = await deadLetterCount(
      Pipeline.from(Sources.fromIterable(raw)).pipe(Stage.decode(Order, { deadLetters: dead }), Stage.writeTo(out)),
      { batchSize: 2 }
    )
    expect(out.items.map((o) => o.id)).toEqual([1, 3, 4, 6])
    expect(dead.items.map((d) => [d.stage, d.record, d.position, d.index])).toEqual([
      ["decode", raw[1], 0, 1],
      ["decode", raw[4], 4, 0]
    ])
    // The source counts items: position + index is the record's index in the input.
    expect(dead.items.map((d) => (d.position as number) + d.index!)).toEqual(bad)
    expect(dead.items.map((d) => d.error.message)).toEqual(["Expected number\n  at [\"id\"]", "Missing key\n  at [\"item\"]"])
    expect(dead.items.map((d) => d.error.issue?._tag)).toEqual(["Composite", "Composite"])
    expect(count).toBe(2)
  })

  it("names the file and line of a bad line of Sources.files", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trib-dead-"))
    const lines = (ids: ReadonlyArray<unknown>) => ids.map((id) => JSON.stringify({ id, item: "x" })).join("\n") + "\n"
    fs.writeFileSync(path.join(dir, "a.jsonl"), lines([1, 2, "three", 4]))
    fs.writeFileSync(path.join(dir, "b.jsonl"), lines([5]) + "not json\n" + lines([7, "eight"]))
    const out = Sinks.collect<Order>()
    const dead = Sinks.collect<Stage.DeadLetter>()
    const count = await deadLetterCount(
      Pipeline.from(Sources.files(dir)).pipe(Stage.decode(Schema.fromJsonString(Order), { deadLetters: dead }), Stage.writeTo(out)),
      { batchSize: 2, parallelism: 2 }
    )
    expect(out.items.map((o) => o.id).sort()).toEqual([1, 2, 4, 5, 7])
    const where = dead.items.map((d) => [path.basename(d.split!), (d.position as number) + d.index! + 1, d.record]).sort()
    expect(where).toEqual([
      ["a.jsonl", 3, JSON.stringify({ id: "three", item: "x" })],
      ["b.jsonl", 2, "not json"],
      ["b.jsonl", 4, JSON.stringify({ id: "eight", item: "x" })]
    ])
    expect(count).toBe(3)
    const failure = await Effect.runPromise(
      Tributary.run(Pipeline.from(Sources.files(dir, { glob: "a.*" })).pipe(Stage.decode(Schema.fromJsonString(Order)), Stage.writeTo(Sinks.collect())), { batchSize: 2 })
        .pipe(Effect.provide(NodeFileSystem.layer), Effect.flip)
    )
    expect(failure.message).toContain(`stage "decode" failed on record ${JSON.stringify(JSON.stringify({ id: "three", item: "x" }))} (split ${JSON.stringify(path.join(dir, "a.jsonl"))}, position 2, index 0): Expected number`)
  })

  it("without a dead-letter sink fails the job naming stage, record, position and the parse error", async () => {
    const failure = await failureOf(
      Pipeline.from(Sources.fromIterable(raw)).pipe(Stage.decode(Order), Stage.writeTo(Sinks.collect())),
      { batchSize: 4 }
    )
    expect(failure).toBeInstanceOf(StageError)
    const error = failure as StageError
    expect([error.stage, error.record, error.position, error.index]).toEqual(["decode", raw[1], 0, 1])
    expect(Schema.isSchemaError(error.cause)).toBe(true)
    expect(error.message).toContain(`stage "decode" failed on record {"id":"two","item":"milk"} (position 0, index 1)`)
    expect(error.message).toContain("Expected number\n  at [\"id\"]")
  })
})

describe("poison records", () => {
  it("a throwing function with deadLetters sends its records there and the job completes", async () => {
    const out = Sinks.collect<number>()
    const dead = Sinks.collect<Stage.DeadLetter>()
    const count = await deadLetterCount(
      Pipeline.from(Sources.fromIterable<unknown>([1, 2, 0, "x", 4, 0, 5])).pipe(
        Stage.decode(Schema.Number, { deadLetters: dead }),
        Stage.map((n) => {
          if (n === 0) throw new Error("division by zero")
          return 100 / n
        }, { deadLetters: dead }),
        Stage.withName("invert"),
        Stage.writeTo(out)
      ),
      { batchSize: 4 }
    )
    expect(out.items).toEqual([100, 50, 25, 20])
    // Behind the decode the records are not the source's batch: no position.
    expect(dead.items.map(({ error, ...letter }) => ({ ...letter, message: error.message }))).toEqual([
      { stage: "decode", record: "x", message: "Expected number", position: 0, index: 3 },
      { stage: "invert", record: 0, message: "division by zero" },
      { stage: "invert", record: 0, message: "division by zero" }
    ])
    expect(count).toBe(3)
  })

  it("stages with different dead-letter sinks each write to their own", async () => {
    const undecoded = Sinks.collect<Stage.DeadLetter>()
    const poison = Sinks.collect<Stage.DeadLetter>()
    const out = Sinks.collect<number>()
    await Effect.runPromise(Tributary.run(
      Pipeline.from(Sources.fromIterable<unknown>([1, "x", 0, 2])).pipe(
        Stage.decode(Schema.Number, { deadLetters: undecoded }),
        Stage.map((n) => {
          if (n === 0) throw new Error("zero")
          return n
        }, { deadLetters: poison }),
        Stage.writeTo(out)
      ),
      { parallelism: 2, batchSize: 2 }
    ))
    expect([...out.items].sort()).toEqual([1, 2])
    expect(undecoded.items.map((d) => [d.record, d.position, d.index])).toEqual([["x", 0, 1]])
    expect(poison.items.map((d) => d.record)).toEqual([0])
  })

  it("without deadLetters a throwing function still fails the job", async () => {
    const failure = await failureOf(
      Pipeline.from(Sources.fromIterable([1, 0])).pipe(
        Stage.map((n) => {
          if (n === 0) throw new Error("zero")
          return n
        }),
        Stage.writeTo(Sinks.collect())
      )
    )
    expect(failure).toBeInstanceOf(StageError)
    expect((failure as StageError).record).toBe(0)
  })
})

describe("dead letters under exactly-once", () => {
  it("a restart neither loses nor repeats a dead letter", async () => {
    const N = 2000
    const isBad = (seq: number) => seq % 10 === 3
    const out = Sinks.collect<number>({ transactional: true })
    const dead = Sinks.collect<Stage.DeadLetter>({ transactional: true })
    let crashed = false
    const pipeline = Pipeline.from(Sources.generator({ make: (seq) => (isBad(seq) ? `bad ${seq}` : seq), count: N, itemsPerSecond: 20_000 })).pipe(
      Stage.decode(Schema.Number, { deadLetters: dead }),
      Stage.map((n) => {
        // One crash, after some snapshots completed.
        if (n === 1500 && !crashed) {
          crashed = true
          throw new Error("injected crash")
        }
        return n
      }),
      Stage.writeTo(out)
    )
    const restarts = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(pipeline, { processingGuarantee: "exactly-once", snapshotInterval: "10 millis", maxRestarts: 1, batchSize: 16 })
      yield* job.join
      return (yield* job.metrics).restarts
    })))
    expect(restarts).toBe(1)
    const expected = Array.from({ length: N }, (_, seq) => seq)
    expect([...out.items].sort((a, b) => a - b)).toEqual(expected.filter((s) => !isBad(s)))
    expect(dead.items.map((d) => d.record).sort()).toEqual(expected.filter(isBad).map((s) => `bad ${s}`).sort())
  })
})
