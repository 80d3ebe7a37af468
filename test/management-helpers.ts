/** A running streaming job behind a management server, for the REST and the browser tests. */
import { Effect } from "effect"
import { HttpServer } from "effect/http"
import { Aggregate, Management, Pipeline, Sinks, Sources, Stage, Tributary, Window } from "../core/src/index.ts"

export const TOKEN = "s3cret-token"

/** A streaming job: events through a keyed window, two instances per vertex, with snapshots. */
const streaming = () =>
  Pipeline.from(Sources.generator({ make: (seq) => ({ key: seq % 4, t: seq }), itemsPerSecond: 4000 })).pipe(
    Stage.withTimestamps((e) => e.t, { allowedLag: 0 }),
    Stage.groupingKey((e) => e.key),
    Stage.window(Window.tumbling(100)),
    Stage.aggregate(Aggregate.counting()),
    Stage.writeTo(Sinks.collect())
  )

/** Runs `body` with the base URL of a management server that manages one running streaming job. */
export const withManagedJob = <A>(body: (base: string, id: string) => Promise<A>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const job = yield* Tributary.submit(streaming(), {
      name: "managed",
      parallelism: 2,
      processingGuarantee: "exactly-once",
      snapshotInterval: "100 millis",
      metricsInterval: "100 millis"
    })
    const { address } = yield* HttpServer.HttpServer
    const base = `http://127.0.0.1:${(address as { port: number }).port}`
    return yield* Effect.promise(() => body(base, job.id))
  })).pipe(Effect.provide(Management.layer({ port: 0, token: TOKEN }))))

