/**
 * The jobs of the `cluster` benchmark, imported by every member process:
 * BENCH_COUNT records from the test generator (split over all instances).
 */
import { Aggregate, Pipeline, Sink, Sources, Stage, Window } from "../core/src/index.ts"
import { Effect } from "effect"
import * as fs from "node:fs"

const count = Number(process.env.BENCH_COUNT ?? 1_000_000)
const discard = Sink.make<unknown>({ name: "discard", open: () => Effect.succeed({ write: () => Effect.void }) })

/** map → filter → sum, the sum per instance (no exchange between members). */
export const stateless = Pipeline.from(Sources.generator({ make: (seq) => seq, count })).pipe(
  Stage.map((x) => x * 2),
  Stage.filter((x) => x % 3 === 0),
  Stage.writeTo(discard)
)

/** The `windowed` benchmark's job: a 10 s / 20 ms sliding count over 10k keys, keyed across members. */
export const windowed = Pipeline.from(Sources.generator({ make: (seq) => ({ key: seq % 10_000, t: seq / 1000 }), count })).pipe(
  Stage.withTimestamps((e) => e.t, { allowedLag: 5 }),
  Stage.groupingKey((e) => e.key),
  Stage.window(Window.sliding("10 seconds", "20 millis")),
  Stage.aggregate(Aggregate.counting()),
  Stage.writeTo(discard)
)

/** Notes the wall time of each batch it gets in BENCH_OUT/notes-<member>. */
const noting = Sink.make<unknown>({
  name: "note",
  open: () =>
    Effect.succeed({
      write: () =>
        Effect.sync(() =>
          fs.appendFileSync(`${process.env.BENCH_OUT}/notes-${process.env.TRIBUTARY_MEMBER}`, `${Date.now()}\n`)
        )
    })
})

/** The `recovery` benchmark's job: a keyed rolling count at BENCH_RATE events/s, every result noted. */
export const recovering = Pipeline.from(Sources.generator({ make: (seq) => seq, count, itemsPerSecond: Number(process.env.BENCH_RATE ?? 100_000) })).pipe(
  Stage.groupingKey((seq) => seq % 1000),
  Stage.rollingAggregate(Aggregate.counting()),
  Stage.writeTo(noting)
)
