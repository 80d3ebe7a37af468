import type { Effect, Scope } from "effect"

/** Where one sink instance sits in the job. */
export interface SinkContext {
  readonly instance: number
  readonly instances: number
  /**
   * After a restart: the snapshot the job resumes from. A two-phase-commit sink
   * commits its transactions up to it that are still pending and discards later ones.
   */
  readonly restoredSnapshot?: number | undefined
  /** The job's name: with the sink's name, instance and snapshot, it names a transaction. */
  readonly job?: string | undefined
  /**
   * The execution's number, growing with each deployment of the job (restarts, rescales,
   * resumes): a transactional sink fences off the instances of older ones.
   */
  readonly execution?: number | undefined
}

/** A running sink instance. `write` is called once per batch, never concurrently. */
export interface SinkWriter<in A> {
  readonly write: (batch: ReadonlyArray<A>) => Effect.Effect<void, unknown>
  /** Called once after the last batch of a bounded job (not on failure or cancel). */
  readonly complete?: Effect.Effect<void, unknown> | undefined
  /**
   * Two-phase commit, for exactly-once output. On a snapshot barrier: make what
   * was written since the previous barrier durable but invisible, as
   * transaction `snapshot`.
   */
  readonly prepare?: ((snapshot: number) => Effect.Effect<void, unknown>) | undefined
  /** Snapshot `snapshot` completed: make the transactions up to it visible (idempotent). */
  readonly commit?: ((snapshot: number) => Effect.Effect<void, unknown>) | undefined
  /** How often calls to the server were retried so far (shown in the job metrics). */
  readonly retries?: (() => number) | undefined
}

export const SinkTypeId: unique symbol = Symbol.for("tributary/Sink")

/**
 * A sink of records as a value. `open` runs once per instance inside the job's
 * scope. Failures are wrapped by the engine into a `SinkError` naming the sink.
 */
export interface Sink<in A, out R = never> {
  readonly [SinkTypeId]: { readonly _R: (_: never) => R }
  readonly name: string
  readonly maxParallelism?: number | undefined
  /**
   * The sink keeps what it receives in the memory of the process that built
   * the pipeline (a collect sink): a job spread over processes runs it as one
   * instance, on the member in that process.
   */
  readonly inProcess?: boolean | undefined
  /** Runs in the tasklet's scope; its requirements are the `R` above (plus `Scope`). */
  readonly open: (ctx: SinkContext) => Effect.Effect<SinkWriter<A>, unknown, unknown>
}

/** Builds a sink from its parts. */
export const make = <A, R = never>(def: {
  readonly name: string
  readonly maxParallelism?: number | undefined
  readonly inProcess?: boolean | undefined
  readonly open: (ctx: SinkContext) => Effect.Effect<SinkWriter<A>, unknown, R>
}): Sink<A, Exclude<R, Scope.Scope>> => ({ [SinkTypeId]: variance, ...def })

const variance = { _R: (_: never) => _ }
