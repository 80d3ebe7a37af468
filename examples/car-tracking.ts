/**
 * Smoothed velocity vectors from GPS reports: a sliding window and a linear
 * regression per axis — the windowing and aggregation are two lines.
 * Reports may arrive out of order by up to the allowed lag.
 */
import { Console, Effect } from "effect"
import { Aggregate, Pipeline, Sinks, Source, Sources, Stage, Tributary, Window } from "@tributary/core"

export interface Position {
  readonly car: string
  /** Seconds since the start of the trip. */
  readonly time: number
  readonly x: number
  readonly y: number
}

export type Velocity = Stage.WindowResult<string, { readonly vx: number; readonly vy: number }>

export const velocities = <R>(positions: Source.Source<Position, R>) =>
  Pipeline.from(positions).pipe(
    Stage.withTimestamps((p) => p.time * 1000, { allowedLag: "2 seconds" }),
    Stage.groupingKey((p) => p.car),
    Stage.window(Window.sliding("10 seconds", "1 second")),
    Stage.aggregate(Aggregate.allOf({ vx: Aggregate.linearTrend((p: Position) => p.time, (p: Position) => p.x), vy: Aggregate.linearTrend((p: Position) => p.time, (p: Position) => p.y) }))
  )

/** Cars driving straight lines at constant velocities, one report every 0.5 s. */
export const drive = (cars: ReadonlyArray<{ readonly car: string; readonly vx: number; readonly vy: number }>, seconds: number) =>
  cars.flatMap(({ car, vx, vy }) =>
    Array.from({ length: seconds * 2 }, (_, i) => ({ car, time: i / 2, x: 100 + vx * (i / 2), y: -50 + vy * (i / 2) }))
  ).sort((a, b) => a.time - b.time)

if (import.meta.main) {
  const reports = drive([{ car: "red", vx: 12, vy: 5 }, { car: "blue", vx: -3, vy: 20 }], 20)
  const out = Sinks.collect<Velocity>()
  Tributary.run(velocities(Sources.fromIterable(reports)).pipe(Stage.writeTo(out))).pipe(
    Effect.flatMap(() =>
      Console.log(
        out.items.filter((v) => v.end % 5000 === 0).map((v) =>
          `${v.key.padEnd(5)} [${v.start / 1000}s, ${v.end / 1000}s)  vx=${v.value.vx.toFixed(2)}  vy=${v.value.vy.toFixed(2)}`
        ).join("\n")
      )
    ),
    Effect.runPromise
  )
}
