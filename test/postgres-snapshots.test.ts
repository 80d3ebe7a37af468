/** The PostgreSQL snapshot store against the real server (PGURL, default 127.0.0.1:5432/test). */
import { Effect } from "effect"
import postgres from "postgres"
import { describe, expect, it } from "vitest"
import { Pipeline, Platform, Sinks, SnapshotStore, Sources, Stage, Tributary } from "../core/src/index.ts"
import { PostgresSnapshotStore } from "../plugins/postgres/src/index.ts"

const url = process.env.PGURL ?? "postgres://postgres@127.0.0.1:5432/test"
const table = "tributary_snapshot_frames_test"
const unique = (name: string) => `${name}-${Platform.runtime}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`

const withStore = <A, E>(f: (store: SnapshotStore.SnapshotStore) => Effect.Effect<A, E, any>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(PostgresSnapshotStore.make({ url, table }), f)) as Effect.Effect<A, E>)

describe("PostgreSQL snapshot store", () => {
  it("keeps snapshots per job, returns the newest intact one, names the damage when none is intact", async () => {
    const job = unique("store")
    const snapshot = (id: number): SnapshotStore.Snapshot => ({ job, id, steps: [], ended: [], positions: [["src", 0, id]] })
    const result = await withStore((store) =>
      Effect.gen(function*() {
        const empty = yield* SnapshotStore.latest(store, job)
        yield* store.save(snapshot(1))
        yield* store.save(snapshot(2))
        const newest = yield* SnapshotStore.latest(store, job)
        // Damage the newest row: the store must fall back to snapshot 1.
        yield* Effect.promise(async () => {
          const sql = postgres(url, { max: 1 })
          await sql.unsafe(`update ${table} set data = substring(data from 1 for 20) where job = $1 and id = 2`, [job])
          await sql.end()
        })
        const afterDamage = yield* SnapshotStore.latest(store, job)
        // With only the damaged one left, there is nothing to restore: an error naming it, not "no snapshot".
        yield* store.remove(job, 1)
        const onlyDamaged = yield* Effect.flip(SnapshotStore.latest(store, job))
        yield* SnapshotStore.clear(store, job)
        const cleared = yield* SnapshotStore.latest(store, job)
        return { empty, newest: newest?.positions, afterDamage: afterDamage?.id, onlyDamaged: onlyDamaged.message, cleared }
      })
    )
    expect(result).toMatchObject({ empty: undefined, newest: [["src", 0, 2]], afterDamage: 1, cleared: undefined })
    expect(result.onlyDamaged).toMatch(/no intact snapshot in postgres .*damaged: 2 \(frame 0 truncated/)
  })

  it("restores an exactly-once job from snapshots kept in PostgreSQL", async () => {
    const N = 1500
    let calls = 0
    const out = Sinks.collect<number>({ transactional: true })
    const pipeline = Pipeline.from(Sources.generator({ make: (seq) => seq, count: N, itemsPerSecond: 10_000 })).pipe(
      Stage.map((seq) => {
        if (++calls === 900) throw new Error("injected fault")
        return seq
      }),
      Stage.groupingKey((seq) => seq % 3),
      Stage.rollingAggregate({ name: "count", create: () => 0, accumulate: (n: number) => n + 1, combine: (a: number, b: number) => a + b, export: (n: number) => n }),
      Stage.map((r) => r.value * 3 + r.key),
      Stage.writeTo(out)
    )
    const restarts = await withStore((store) =>
      Effect.gen(function*() {
        const job = yield* Tributary.submit(pipeline, {
          name: unique("job"),
          parallelism: 2,
          batchSize: 16,
          processingGuarantee: "exactly-once",
          snapshotInterval: "15 millis",
          snapshotStore: store
        })
        yield* job.join
        return (yield* job.metrics).restarts
      })
    )
    expect(restarts).toBe(1)
    // The running count per key is 1, 2, 3, ... exactly once each: encoded as value * 3 + key.
    const expected = Array.from({ length: N }, (_, seq) => (Math.floor(seq / 3) + 1) * 3 + (seq % 3))
    expect([...out.items].sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b))
  })
})
