/**
 * Two-phase-commit sinks from the transactions of an external system, and
 * idempotent sinks for systems that upsert by key. The engine drives a sink's
 * `prepare` at each snapshot barrier and `commit` when the snapshot completes;
 * this module adds the rest of a correct protocol: transaction ids, recovery
 * after a restart or a rescale, idempotent commits and fencing.
 */
import { Data, Effect } from "effect"
import * as Sink from "../pipeline/Sink.ts"
import * as Retry from "./Retry.ts"
import { FINAL_SNAPSHOT } from "../snapshot/Coordinator.ts"
import { Unrecoverable } from "../errors.ts"

/** Names one transaction: unique per job, sink, instance and snapshot. */
export interface TransactionId {
  readonly job: string
  readonly sink: string
  readonly instance: number
  /** The snapshot the transaction belongs to (`FINAL_SNAPSHOT`: the last one of a bounded job). */
  readonly snapshot: number
}

/** The string form of an id, for a system that names its transactions with strings. */
export const format = (id: TransactionId): string =>
  `${encodeURIComponent(id.job)}/${encodeURIComponent(id.sink)}/${id.instance}/${id.snapshot}`

/** An instance of an older execution of the job tried to write, prepare or commit after a newer one opened the sink. */
export class FencedError extends Data.TaggedError("FencedError")<{
  readonly sink: string
  readonly instance: number
  readonly execution: number
  readonly newest: number
}> {
  /** A newer execution owns the sink: restarting this one would only be fenced off again. */
  readonly [Unrecoverable] = true
}

/** One sink instance's side of the external system. Every method but `write` runs at most once per snapshot. */
export interface Connection<A, Tx> {
  /** Starts a transaction, at the first batch after a barrier (and for the final one, even empty). */
  readonly begin: Effect.Effect<Tx, unknown>
  readonly write: (tx: Tx, batch: ReadonlyArray<A>) => Effect.Effect<void, unknown>
  /** At the barrier of snapshot `id`: makes the transaction durable but invisible until committed or aborted, as `id`. */
  readonly prepare: (tx: Tx, id: TransactionId) => Effect.Effect<void, unknown>
  /** Makes prepared transaction `id` visible; of an id no longer prepared (already committed), does nothing. */
  readonly commit: (id: TransactionId) => Effect.Effect<void, unknown>
  /** Drops prepared transaction `id`. */
  readonly abort: (id: TransactionId) => Effect.Effect<void, unknown>
  /** The transactions of this job's sink prepared and neither committed nor aborted, of every instance. */
  readonly recover: Effect.Effect<ReadonlyArray<TransactionId>, unknown>
  /**
   * After recovery, with the restored snapshot (0: a fresh start): withdraws committed output of
   * later snapshots of the instances `owns` accepts, for a system that can (a newer snapshot was
   * found damaged, so that output will be written again).
   */
  readonly withdraw?: ((after: number, owns: (instance: number) => boolean) => Effect.Effect<void, unknown>) | undefined
  /**
   * Fencing: the newest execution that opened this job's sink, kept durably by the system.
   * Without it, an instance of an older execution still running (a member cut off from the
   * cluster) could commit after a newer one restored.
   */
  readonly epoch?: {
    readonly get: Effect.Effect<number | undefined, unknown>
    readonly set: (execution: number) => Effect.Effect<void, unknown>
  } | undefined
}

/** Which instance answers for the transactions of instance `n`: its own, and those of instances gone after a rescale. */
export const owns = (instance: number, instances: number) => (n: number): boolean =>
  n === instance || (n >= instances && n % instances === instance)

/**
 * A two-phase-commit sink over `open`'s connection. On open it recovers: the
 * transactions it answers for that the restored snapshot covers are committed,
 * the others aborted (their records replay). With `exactly-once`, each record
 * is then visible once, after the snapshot that covers it.
 *
 * With `retry`, the calls that may be repeated — commit, abort, recovery,
 * withdrawal, the epoch — are retried when the server goes away. A failed
 * `begin`, `write` or `prepare` fails the job instead: the open transaction is
 * lost with its connection, and the restart from the last snapshot aborts it
 * and replays its records.
 */
export const make = <A, Tx, R = never>(def: {
  readonly name: string
  readonly maxParallelism?: number | undefined
  readonly inProcess?: boolean | undefined
  readonly retry?: Retry.RetryOptions | undefined
  readonly open: (ctx: Sink.SinkContext) => Effect.Effect<Connection<A, Tx>, unknown, R>
}) =>
  Sink.make<A, R>({
    name: def.name,
    maxParallelism: def.maxParallelism,
    inProcess: def.inProcess,
    open: (ctx) =>
      Effect.gen(function*() {
        const { instance, instances, restoredSnapshot } = ctx
        const job = ctx.job ?? ""
        const execution = ctx.execution ?? 0
        const opened = yield* def.open(ctx)
        const { retried, retries } = retrier(def.name, def.retry)
        const connection: Connection<A, Tx> = {
          ...opened,
          commit: (id) => retried(opened.commit(id)),
          abort: (id) => retried(opened.abort(id)),
          recover: retried(opened.recover),
          withdraw: opened.withdraw && ((after, owns) => retried(opened.withdraw!(after, owns))),
          epoch: opened.epoch && { get: retried(opened.epoch.get), set: (n) => retried(opened.epoch!.set(n)) }
        }
        const { epoch } = connection
        const fenced = (newest: number | undefined) =>
          newest !== undefined && newest > execution
            ? Effect.fail(new FencedError({ sink: def.name, instance, execution, newest }))
            : Effect.void
        /** Refuses to go on once a newer execution opened the sink. */
        const checked = <X>(effect: Effect.Effect<X, unknown>) => epoch ? Effect.andThen(Effect.flatMap(epoch.get, fenced), effect) : effect
        if (epoch) {
          // A fresh start owns the sink whatever ran before; a restart only if no newer execution did.
          if (restoredSnapshot !== undefined) yield* Effect.flatMap(epoch.get, fenced)
          yield* epoch.set(execution)
        }

        const mine = owns(instance, instances)
        const upTo = restoredSnapshot ?? 0
        const recovered = (yield* connection.recover).filter((id) => mine(id.instance))
        for (const id of recovered.sort((a, b) => a.snapshot - b.snapshot)) {
          yield* id.snapshot <= upTo ? connection.commit(id) : connection.abort(id)
        }
        if (connection.withdraw) yield* connection.withdraw(upTo, mine)

        const idOf = (snapshot: number): TransactionId => ({ job, sink: def.name, instance, snapshot })
        // The transaction of the records since the last barrier, begun on the first of them.
        let open: { readonly tx: Tx } | undefined
        // Prepared and not yet committed, oldest first.
        const prepared: Array<TransactionId> = []
        const begin = Effect.map(connection.begin, (tx) => (open = { tx }))
        const writer: Sink.SinkWriter<A> = {
          retries,
          write: (batch) =>
            batch.length === 0 ? Effect.void : Effect.flatMap(open ? Effect.succeed(open) : checked(begin), (o) => connection.write(o.tx, batch)),
          prepare: (snapshot) =>
            checked(Effect.gen(function*() {
              // Nothing written since the last barrier: no transaction, but for the final one.
              if (!open && snapshot !== FINAL_SNAPSHOT) return
              const { tx } = open ?? (yield* begin)
              open = undefined
              yield* connection.prepare(tx, idOf(snapshot))
              prepared.push(idOf(snapshot))
            })),
          commit: (snapshot) =>
            Effect.suspend(() => {
              const due = prepared.filter((id) => id.snapshot <= snapshot)
              if (due.length === 0) return Effect.void
              return checked(Effect.forEach(due, (id) =>
                Effect.andThen(connection.commit(id), Effect.sync(() => void prepared.splice(prepared.indexOf(id), 1))), { discard: true }))
            })
        }
        return writer
      })
  })

/**
 * A sink for a system that upserts by key, exactly-once without transactions:
 * each batch is upserted at once, only the last record of each key in it.
 * It holds when the upsert of a key replaces its row and the records replayed
 * after a restore upsert the same keys with the same values in the same order
 * as before the failure: all the records of a key reach one instance, from an
 * exactly-once, deterministic pipeline. The table then ends as a run without
 * failure leaves it, though a reader may see a key go back to an earlier value
 * while its records replay.
 */
export const idempotent = <A, K, R = never>(def: {
  readonly name: string
  readonly key: (a: A) => K
  readonly maxParallelism?: number | undefined
  /** Retries an upsert when the server goes away (an upsert may be repeated). */
  readonly retry?: Retry.RetryOptions | undefined
  readonly open: (ctx: Sink.SinkContext) => Effect.Effect<{
    readonly upsert: (rows: ReadonlyArray<A>) => Effect.Effect<void, unknown>
  }, unknown, R>
}) =>
  Sink.make<A, R>({
    name: def.name,
    maxParallelism: def.maxParallelism,
    open: (ctx) =>
      Effect.map(def.open(ctx), ({ upsert }): Sink.SinkWriter<A> => {
        const { retried, retries } = retrier(def.name, def.retry)
        return {
          retries,
          write: (batch) => {
            const last = new Map<K, A>()
            for (const a of batch) {
              const key = def.key(a)
              // Re-inserted, so the rows keep the order of their last records.
              last.delete(key)
              last.set(key, a)
            }
            return last.size === 0 ? Effect.void : retried(upsert([...last.values()]))
          }
        }
      })
  })

/** Retries calls to the server under `options` (none without), counting the retries. */
const retrier = (connector: string, options: Retry.RetryOptions | undefined) => {
  let count = 0
  return {
    retries: () => count,
    retried: <X>(call: Effect.Effect<X, unknown>): Effect.Effect<X, unknown> =>
      options ? Retry.retrying(connector, options, call, Effect.void, () => void count++) : call
  }
}
