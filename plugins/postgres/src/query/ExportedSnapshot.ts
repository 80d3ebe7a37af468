/**
 * One snapshot of the database for all the splits of a query read in this
 * process: a coordinating transaction exports it (`pg_export_snapshot()`) and
 * stays open while any source instance here holds it, so every split that
 * opens meanwhile imports it (`SET TRANSACTION SNAPSHOT`) and reads the same
 * state of the database. Instances in other processes export their own.
 */
import { Effect, Exit, Scope, Semaphore } from "effect"
import { PostgresClient } from "../Client.ts"

/** A shared snapshot: `hold` keeps it exported for the scope; `current` is its id while held. */
export const make = () => {
  const lock = Semaphore.makeUnsafe(1)
  let state: { refs: number; readonly id: string; readonly scope: Scope.Closeable } | undefined
  const exported = Effect.gen(function*() {
    const client = yield* PostgresClient
    const sql = yield* client.connect
    const conn = yield* Effect.tryPromise({ try: () => sql.reserve(), catch: client.fail("cannot open the snapshot transaction") })
    const [row] = yield* Effect.tryPromise({
      try: async () => {
        await conn.unsafe("begin isolation level repeatable read read only")
        return conn.unsafe<Array<{ id: string }>>("select pg_export_snapshot() as id")
      },
      catch: client.fail("cannot export a snapshot")
    })
    return row!.id
  })
  const acquire = lock.withPermit(Effect.gen(function*() {
    if (!state) {
      const scope = yield* Scope.make()
      const id = yield* Scope.provide(exported, scope).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
      state = { refs: 0, id, scope }
    }
    state.refs++
    return state.id
  }))
  const release = lock.withPermit(Effect.suspend(() => {
    const s = state!
    if (--s.refs > 0) return Effect.void
    state = undefined
    return Scope.close(s.scope, Exit.void)
  }))
  return { hold: Effect.acquireRelease(acquire, () => release), current: () => state?.id }
}
