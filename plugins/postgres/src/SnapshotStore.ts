/**
 * Snapshots in PostgreSQL, for jobs whose members share no disk: one row per
 * frame of a snapshot (bytea, each with its checksum header), written in one
 * transaction; core's `SnapshotStore.latest` checks them, so a snapshot with a
 * frame damaged, cut short or missing is skipped on restore, never used.
 */
import { Effect, type Scope } from "effect"
import { SnapshotError, SnapshotStore } from "@tributary/core"
import postgres from "postgres"

export interface PostgresSnapshotStoreOptions {
  /** Connection URL (default `postgres://postgres@127.0.0.1:5432/test`, or `PGURL` / `DATABASE_URL` when set). */
  readonly url?: string | undefined
  /** Table to keep snapshots in (created if missing). */
  readonly table?: string | undefined
}

const defaultUrl = () => process.env.PGURL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** A snapshot store on PostgreSQL; its connections close with the scope. */
export const make = (
  options: PostgresSnapshotStoreOptions = {}
): Effect.Effect<SnapshotStore.SnapshotStore, SnapshotError, Scope.Scope> =>
  Effect.gen(function*() {
    const table = options.table ?? "tributary_snapshot_frames"
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) {
      return yield* new SnapshotError({ job: "-", reason: `invalid table name "${table}"` })
    }
    const url = options.url ?? defaultUrl()
    const sql = yield* Effect.acquireRelease(
      Effect.sync(() => postgres(url, { max: 4, onnotice: () => {} })),
      (sql) => Effect.promise(() => sql.end({ timeout: 5 }))
    )
    const query = <A>(job: string, reason: string, run: () => Promise<A>) =>
      Effect.tryPromise({ try: run, catch: (cause) => new SnapshotError({ job, reason: `${reason} (${url})`, cause }) })
    yield* query("-", "cannot create the snapshot table", () =>
      sql.unsafe(`create table if not exists ${table} (
        job text not null,
        id bigint not null,
        seq integer not null,
        data bytea not null,
        created_at timestamptz not null default now(),
        primary key (job, id, seq))`))
    const store: SnapshotStore.SnapshotStore = {
      name: `postgres ${table}`,
      save: (snapshot) =>
        query(snapshot.job, "cannot be written", () =>
          sql.begin(async (tx) => {
            await tx.unsafe(`delete from ${table} where job = $1 and id = $2`, [snapshot.job, snapshot.id])
            let seq = 0
            for (const frame of SnapshotStore.encode(snapshot)) {
              await tx.unsafe(`insert into ${table} (job, id, seq, data) values ($1, $2, $3, $4)`, [
                snapshot.job,
                snapshot.id,
                seq++,
                Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)
              ])
            }
          })).pipe(Effect.asVoid),
      ids: (job) =>
        Effect.map(
          query(job, "cannot be listed", () => sql.unsafe<Array<{ id: string }>>(`select distinct id from ${table} where job = $1`, [job])),
          (rows) => rows.map((r) => Number(r.id))
        ),
      read: (job, id) =>
        Effect.map(
          query(job, `snapshot ${id} cannot be read`, () =>
            sql.unsafe<Array<{ data: Uint8Array }>>(`select data from ${table} where job = $1 and id = $2 order by seq`, [job, id])),
          (rows) => rows.map((r) => r.data)
        ),
      remove: (job, id) =>
        query(job, `snapshot ${id} cannot be removed`, () => sql.unsafe(`delete from ${table} where job = $1 and id = $2`, [job, id])).pipe(
          Effect.asVoid
        )
    }
    return store
  })
