/**
 * Snapshots in PostgreSQL, for jobs whose members share no disk: one row per
 * snapshot (bytea, with the checksum header of every Tributary snapshot), so
 * a row damaged or cut short is skipped on restore, never used.
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
    const table = options.table ?? "tributary_snapshots"
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
        data bytea not null,
        created_at timestamptz not null default now(),
        primary key (job, id))`))
    const store: SnapshotStore.SnapshotStore = {
      name: `postgres ${table}`,
      save: (snapshot) =>
        query(snapshot.job, "cannot be written", () =>
          sql.unsafe(
            `insert into ${table} (job, id, data) values ($1, $2, $3)
             on conflict (job, id) do update set data = excluded.data, created_at = now()`,
            [snapshot.job, snapshot.id, Buffer.from(SnapshotStore.encode(snapshot))]
          )).pipe(Effect.asVoid),
      latest: (job) =>
        Effect.flatMap(
          query(job, "cannot be read", () =>
            sql.unsafe<Array<{ id: string; data: Uint8Array }>>(`select id, data from ${table} where job = $1 order by id desc`, [job])),
          (rows) =>
            Effect.sync(() => {
              for (const row of rows) {
                try {
                  return SnapshotStore.decode(job, row.data)
                } catch {
                  // damaged: fall back to an older one
                }
              }
              return undefined
            })
        ),
      prune: (job, keep) =>
        query(job, "cannot be pruned", () => sql.unsafe(`delete from ${table} where job = $1 and id < $2`, [job, keep])).pipe(
          Effect.asVoid
        )
    }
    return store
  })
