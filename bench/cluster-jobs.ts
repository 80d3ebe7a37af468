/**
 * The jobs of the `cluster` benchmark, imported by every member process:
 * BENCH_COUNT records from the test generator (split over all instances).
 */
import { Aggregate, Pipeline, Sink, Sources, Stage, Window } from "../core/src/index.ts"
import { Effect } from "effect"

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
