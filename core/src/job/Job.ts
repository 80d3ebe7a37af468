import { Cause, Clock, Data, Deferred, Duration, Effect, Exit, Fiber, Queue, type Scope, Stream } from "effect"
import { StreamOutput, type StreamOutputOf } from "../connectors/stream.ts"
import { JobCancelledError, type JobError, PlanError } from "../errors.ts"
import type { Dag } from "../plan/Dag.ts"
import { plan } from "../plan/Planner.ts"
import { DEFAULT_PARTITION_COUNT } from "../plan/partition.ts"
import type { Pipeline } from "../pipeline/Pipeline.ts"
import { deploy, type Placement } from "../runtime/Execution.ts"
import type { JobMetrics } from "../runtime/Metrics.ts"
import { Coordinator, type Guarantee } from "../snapshot/Coordinator.ts"
import type { Snapshot, SnapshotError } from "../snapshot/Snapshot.ts"
import * as SnapshotStore from "../snapshot/SnapshotStore.ts"
import * as RestartPolicy from "./RestartPolicy.ts"

export interface JobOptions {
  /** Shown in errors and metrics. */
  readonly name?: string | undefined
  /** Instances of each parallel vertex in this process (default 1). */
  readonly parallelism?: number | undefined
  /**
   * Instances of each source (default: `parallelism`, capped by the source's
   * `maxParallelism`). A cluster keeps it fixed while members come and go:
   * a source's positions belong to the slices of input its instances read;
   * there a source made of splits (positions per split) follows the members.
   */
  readonly sourceParallelism?: number | undefined
  /** Records per batch (default 1024). */
  readonly batchSize?: number | undefined
  /** Bound of every queue between tasklets, in batches (default 4). */
  readonly queueCapacity?: number | undefined
  /** Partitions of keyed state (default 271). */
  readonly partitionCount?: number | undefined
  /**
   * `none` (default): a failure fails the job. `at-least-once` / `exactly-once`:
   * snapshots are taken every `snapshotInterval` and a failed job restarts from
   * the last complete one, replaying its sources from there.
   */
  readonly processingGuarantee?: Guarantee | undefined
  /** Time between snapshots (default 10 seconds). */
  readonly snapshotInterval?: Duration.Input | undefined
  /** Where snapshots are kept (default: the `SnapshotStore.layer` provided, else in memory). */
  readonly snapshotStore?: SnapshotStore.SnapshotStore | undefined
  /** When a failure restarts the job and when it fails it (default: 10 failures within 5 minutes). */
  readonly restartPolicy?: RestartPolicy.RestartPolicy | undefined
  /** Shorthand for `restartPolicy: RestartPolicy.maxRestarts(n)`: `n` failures in all, however far apart. */
  readonly maxRestarts?: number | undefined
  /**
   * Complete snapshots kept in the store (default 2): when the newest is found
   * damaged, the job restores the newest intact one.
   */
  readonly retainedSnapshots?: number | undefined
  /** Start from the snapshot exported under this name (`Job.exportSnapshot`) in the snapshot store. */
  readonly initialSnapshot?: string | undefined
  /**
   * Set by the cluster runtime when the job is spread over several members:
   * which instances run in this process and how channels reach the others.
   */
  readonly placement?: Placement | undefined
}

export type JobStatus = "running" | "restarting" | "suspended" | "completed" | "failed" | "cancelled"

/** A lifecycle operation that the job's state or options do not allow. */
export class JobStateError extends Data.TaggedError("JobStateError")<{
  readonly job: string
  readonly reason: string
}> {
  override get message() {
    return `job "${this.job}": ${this.reason}`
  }
}

/** A handle on a submitted job whose stages fail with `E`. */
export interface Job<out E = never> {
  readonly id: string
  readonly name: string
  readonly status: Effect.Effect<JobStatus>
  readonly metrics: Effect.Effect<JobMetrics>
  /** Stops the job and releases its resources; `join` then fails with `JobCancelledError`. */
  readonly cancel: Effect.Effect<void>
  /** Waits for the end of a bounded job, failing with what failed it. */
  readonly join: Effect.Effect<void, E | JobError>
  /** Takes a final snapshot and stops, keeping the state (needs a processing guarantee). */
  readonly suspend: Effect.Effect<void, JobStateError | SnapshotError>
  /** Continues a suspended job from its final snapshot. */
  readonly resume: Effect.Effect<void, JobStateError | SnapshotError>
  /** Stops and starts again from the last complete snapshot. */
  readonly restart: Effect.Effect<void, JobStateError | SnapshotError>
  /**
   * Takes a snapshot now and keeps a copy under `name` in the job's snapshot
   * store; a new job (possibly a changed pipeline) starts from it with the
   * `initialSnapshot` option, its state matched by stage name.
   */
  readonly exportSnapshot: (name: string) => Effect.Effect<void, JobStateError | SnapshotError>
}

let jobCounter = 0

/** An integer option of at least `min` (1 unless said otherwise), or `fallback` when omitted. */
const integer = (name: string, value: number | undefined, fallback: number, min = 1): number => {
  const v = value ?? fallback
  if (!Number.isInteger(v) || v < min) {
    throw new PlanError({ reason: `${name} must be ${min === 1 ? "a positive integer" : `an integer of at least ${min}`}, got ${v}` })
  }
  return v
}

/**
 * A snapshot fits a pipeline when every stage and source it holds state for is
 * still there, and every source has as many instances as when it was taken.
 */
const checkCompatible = (dag: Dag, snapshot: Snapshot, from: string) => {
  const stages = new Set(dag.vertices.flatMap((v) => v.steps.map((s) => s.stateKey)))
  const sources = new Set(dag.vertices.flatMap((v) => (v.sourceKey ? [v.sourceKey] : [])))
  const missing = [
    ...snapshot.steps.filter((s) => !stages.has(s.stage)).map((s) => `stage "${s.stage}"`),
    ...snapshot.positions.filter(([source]) => !sources.has(source)).map(([source]) => `source "${source}"`)
  ]
  if (missing.length > 0) {
    throw new PlanError({
      reason: `snapshot "${from}" holds state of ${[...new Set(missing)].join(", ")}, which the pipeline no longer has`
    })
  }
  // Keyed state moves between instances by partition; a source's position belongs to the
  // slice of the input its instance read, and a slice cut another way would replay or skip.
  for (const v of dag.vertices) {
    const saved = snapshot.positions.filter(([source]) => source === v.sourceKey).length
    if (saved > 0 && saved !== v.parallelism && !v.source?.rescalable) {
      throw new PlanError({
        reason: `snapshot "${from}" holds the positions of ${saved} instances of source "${v.sourceKey}", ` +
          `which now has ${v.parallelism}: a source without splits keeps its parallelism across a snapshot (cap it with the source's maxParallelism)`
      })
    }
  }
}

/**
 * Plans and starts a job in the current scope and returns its handle at once.
 * Closing the scope cancels a job that is still running.
 */
export const submit = <E, R>(
  pipeline: Pipeline<E, R>,
  options: JobOptions = {}
): Effect.Effect<Job<E>, PlanError | SnapshotError, R | Scope.Scope> =>
  Effect.gen(function*() {
    const id = `job-${++jobCounter}`
    const name = options.name ?? id
    const guarantee = options.processingGuarantee ?? "none"
    const store = options.snapshotStore ?? (yield* SnapshotStore.Current) ?? SnapshotStore.memory()
    const { dag, executionOptions, restartPolicy, retain } = yield* Effect.try({
      try: () => {
        const dag = plan(pipeline, {
          parallelism: integer("parallelism", options.parallelism, 1),
          sourceParallelism: options.sourceParallelism === undefined ? undefined : integer("sourceParallelism", options.sourceParallelism, 1),
          partitionCount: integer("partitionCount", options.partitionCount, DEFAULT_PARTITION_COUNT),
          spread: options.placement !== undefined
        })
        return {
          dag,
          restartPolicy: RestartPolicy.fromOptions(options),
          retain: integer("retainedSnapshots", options.retainedSnapshots, SnapshotStore.DEFAULT_RETAINED),
          executionOptions: {
            batchSize: integer("batchSize", options.batchSize, 1024),
            queueCapacity: integer("queueCapacity", options.queueCapacity, 4),
            snapshotInterval: integer("snapshotInterval", Duration.toMillis(options.snapshotInterval ?? "10 seconds"), 1),
            placement: options.placement
          }
        }
      },
      catch: (e) => (e instanceof PlanError ? e : new PlanError({ reason: String(e) }))
    })
    if (options.placement && guarantee !== "none") {
      return yield* new PlanError({ reason: "a job spread over members gets its processing guarantee from the cluster, not from each member's options" })
    }
    let initial: Snapshot | undefined
    if (options.initialSnapshot !== undefined) {
      const exported = yield* SnapshotStore.latest(store, options.initialSnapshot)
      if (!exported) return yield* new PlanError({ reason: `no snapshot named "${options.initialSnapshot}" in ${store.name}` })
      yield* Effect.try({
        try: () => checkCompatible(dag, exported, options.initialSnapshot!),
        catch: (e) => e as PlanError
      })
      // The new job's snapshots continue from the exported one, under its own name.
      yield* store.save({ ...exported, job: name })
      initial = { ...exported, job: name }
    }
    const tasklets = dag.vertices.reduce((n, v) => n + v.parallelism, 0)
    const scope = yield* Effect.scope
    // The services the job was submitted with (a file system for a directory store, ...), for the handle's operations.
    const context = yield* Effect.context<any>()
    const latest = Effect.provideContext(SnapshotStore.latest(store, name), context) as Effect.Effect<Snapshot | undefined, SnapshotError>
    const outcome = yield* Deferred.make<void, E | JobError>()
    let status: JobStatus = "running"
    let restarts = 0
    let failures: RestartPolicy.Failures = []
    let current = deploy(dag, { ...executionOptions, coordinator: undefined, restored: undefined })
    // Execution numbers grow across restarts and also across processes resuming the job (the clock's
    // milliseconds), so a transactional sink fences off an older execution but never a newer one.
    let execution = 0
    const nextExecution = () => (execution = Math.max(execution + 1, Date.now()))
    let coordinator: Coordinator | undefined
    // The newest snapshot whose output this job committed: a restart never goes back before it to nothing.
    let committed = initial?.id ?? 0
    let fiber: Fiber.Fiber<void, unknown> | undefined

    /** One execution, from `restored` (or the start); a failure restarts from the last complete snapshot. */
    const execute = (restored: Snapshot | undefined): Effect.Effect<void, unknown, any> =>
      Effect.suspend(() => {
        const remote = options.placement?.snapshots
        if (remote) {
          // A member of a cluster: the job's coordinator runs elsewhere and decides restarts.
          current = deploy(dag, { ...executionOptions, job: name, coordinator: remote, restored: options.placement!.restored })
          return Effect.scoped(current.run)
        }
        const c = guarantee === "none" ? undefined : new Coordinator(name, store, tasklets, guarantee, restored?.id ?? 0, retain)
        coordinator = c
        current = deploy(dag, { ...executionOptions, job: name, execution: nextExecution(), coordinator, restored })
        return Effect.catchCause(Effect.scoped(current.run), (cause) =>
          Effect.gen(function*() {
            if (!c || Cause.hasInterruptsOnly(cause)) return yield* Effect.failCause(cause)
            const counted = RestartPolicy.onFailure(failures, restartPolicy, yield* Clock.currentTimeMillis)
            if (!counted) return yield* Effect.failCause(cause)
            failures = counted
            restarts++
            status = "restarting"
            committed = Math.max(committed, c.completed)
            return yield* SnapshotStore.recover(store, name, committed).pipe(
              // Back to running either way: a job that cannot recover fails as a running one does.
              Effect.onExit(() => Effect.sync(() => void (status = "running"))),
              Effect.flatMap(execute)
            )
          }))
      })

    /** Runs an execution in the job's scope; its end settles the job unless it was stopped on purpose. */
    const start = (restored: Snapshot | undefined): Effect.Effect<void> =>
      Effect.gen(function*() {
        status = "running"
        const run = execute(restored).pipe(
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              if (status === "suspended" || status === "restarting") return Effect.void
              if (Exit.isSuccess(exit)) {
                status = "completed"
                return Deferred.succeed(outcome, undefined)
              }
              if (Cause.hasInterruptsOnly(exit.cause)) {
                status = "cancelled"
                return Deferred.fail(outcome, new JobCancelledError({ job: name }))
              }
              status = "failed"
              return Deferred.failCause(outcome, exit.cause as Cause.Cause<E | JobError>)
            })
          )
        )
        fiber = yield* Effect.forkIn(Effect.provideContext(run, context) as Effect.Effect<void, unknown>, scope)
      })

    const stateError = (reason: string): Effect.Effect<never, JobStateError> => Effect.fail(new JobStateError({ job: name, reason }))

    /**
     * Asks the running execution for a snapshot and waits until it is complete.
     * A terminal one (sources stop after it) waits for one in flight to finish first.
     */
    const snapshotNow = (terminal: boolean) =>
      Effect.suspend(() => {
        const c = coordinator
        if (!c) return stateError("snapshots need processingGuarantee at-least-once or exactly-once")
        if (status !== "running") return stateError(`the job is ${status}`)
        let target = 0
        const asked = () => {
          if (target === 0 && (c.request(terminal) || !terminal)) target = c.requested
          return target > 0
        }
        asked()
        return Effect.andThen(
          Effect.repeat(Effect.sleep(5), { until: () => (asked() && c.completed >= target) || status !== "running" }),
          Effect.suspend(() => (target > 0 && c.completed >= target ? Effect.void : stateError(`the job ended (${status}) before the snapshot completed`)))
        )
      })

    const stop = (next: JobStatus) =>
      Effect.suspend(() => {
        status = next
        return fiber ? Fiber.interrupt(fiber) : Effect.void
      })

    yield* start(initial)
    return {
      id,
      name,
      status: Effect.sync(() => status),
      metrics: Effect.sync(() => ({ instances: current.metrics(), restarts })),
      cancel: Effect.suspend(() => {
        if (status === "completed" || status === "failed" || status === "cancelled") return Effect.void
        return Effect.andThen(stop("cancelled"), Deferred.fail(outcome, new JobCancelledError({ job: name })))
      }),
      join: Deferred.await(outcome),
      suspend: Effect.andThen(snapshotNow(true), stop("suspended")),
      resume: Effect.suspend((): Effect.Effect<void, JobStateError | SnapshotError> =>
        status !== "suspended"
          ? stateError(`only a suspended job can resume; it is ${status}`)
          : Effect.flatMap(latest, start)
      ),
      restart: Effect.suspend((): Effect.Effect<void, JobStateError | SnapshotError> =>
        status !== "running"
          ? stateError(`only a running job can restart; it is ${status}`)
          : Effect.andThen(stop("restarting"), Effect.flatMap(latest, start))
      ),
      exportSnapshot: (exportName) =>
        Effect.andThen(
          // A suspended job's final snapshot is exported as it is.
          Effect.suspend(() => (status === "suspended" ? Effect.void : snapshotNow(false))),
          Effect.flatMap(latest, (snapshot): Effect.Effect<void, SnapshotError | JobStateError> =>
            snapshot
              ? Effect.provideContext(store.save({ ...snapshot, job: exportName }), context) as Effect.Effect<void, SnapshotError>
              : stateError("no snapshot to export"))
        )
    }
  })

/** Runs a job to its end (bounded input) and releases its resources. */
export const run = <E, R>(pipeline: Pipeline<E, R>, options?: JobOptions): Effect.Effect<void, E | JobError | SnapshotError, R> =>
  Effect.scoped(Effect.flatMap(submit(pipeline, options), (job) => job.join))

export interface StreamOptions extends JobOptions {
  /** Records the job may write ahead of the stream's consumer (default: `batchSize`, else 1024). */
  readonly bufferSize?: number | undefined
}

/**
 * Runs a job whose `Sinks.stream()` sinks feed the returned stream, in chunks
 * of their batches. The job starts when the stream is run and lives in its
 * scope: a consumer that stops (`Stream.take`, an interrupted fiber) cancels
 * the job and releases its resources. Between the sinks and the consumer is a
 * bounded buffer, so a slow consumer holds the job back (backpressure). The
 * stream ends when the job completes and fails with what failed the job.
 * Records reach the stream as they are written: after a restart from a
 * snapshot, the ones written since then come again (at-least-once).
 */
export const stream = <E, R>(
  pipeline: Pipeline<E, R>,
  options: StreamOptions = {}
): Stream.Stream<StreamOutputOf<R>, E | JobError | SnapshotError, Exclude<R, StreamOutput<any>>> =>
  Stream.unwrap(Effect.gen(function*() {
    const capacity = yield* Effect.try({
      try: () => integer("bufferSize", options.bufferSize, options.batchSize ?? 1024),
      catch: (e) => e as PlanError
    })
    const queue = yield* Queue.bounded<StreamOutputOf<R>, E | JobError | SnapshotError | Cause.Done>(capacity)
    const job = yield* Effect.provideService(submit(pipeline, options), StreamOutput, queue)
    yield* Effect.forkScoped(Effect.flatMap(Effect.exit(job.join), (exit) =>
      Exit.isSuccess(exit) ? Queue.end(queue) : Queue.failCause(queue, exit.cause)))
    return Stream.fromQueue(queue)
  })) as Stream.Stream<StreamOutputOf<R>, E | JobError | SnapshotError, Exclude<R, StreamOutput<any>>>
