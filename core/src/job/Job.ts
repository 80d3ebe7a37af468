import { Cause, Duration, Effect, Exit, Fiber, type Scope } from "effect"
import { JobCancelledError, type JobError, PlanError } from "../errors.ts"
import { plan } from "../plan/Planner.ts"
import { DEFAULT_PARTITION_COUNT } from "../plan/partition.ts"
import type { Pipeline } from "../pipeline/Pipeline.ts"
import { deploy } from "../runtime/Execution.ts"
import type { JobMetrics } from "../runtime/Metrics.ts"
import { Coordinator, type Guarantee } from "../snapshot/Coordinator.ts"
import type { Snapshot } from "../snapshot/Snapshot.ts"
import * as SnapshotStore from "../snapshot/SnapshotStore.ts"

export interface JobOptions {
  /** Shown in errors and metrics. */
  readonly name?: string | undefined
  /** Instances of each parallel vertex in this process (default 1). */
  readonly parallelism?: number | undefined
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
  /** Where snapshots are kept (default: in memory). */
  readonly snapshotStore?: SnapshotStore.SnapshotStore | undefined
  /** Restarts after failures before the job fails for good (default 10). */
  readonly maxRestarts?: number | undefined
}

export type JobStatus = "running" | "restarting" | "completed" | "failed" | "cancelled"

/** A handle on a submitted job. */
export interface Job {
  readonly id: string
  readonly name: string
  readonly status: Effect.Effect<JobStatus>
  readonly metrics: Effect.Effect<JobMetrics>
  /** Stops the job and releases its resources; `join` then fails with `JobCancelledError`. */
  readonly cancel: Effect.Effect<void>
  /** Waits for the end of a bounded job, failing with what failed it. */
  readonly join: Effect.Effect<void, JobError>
}

let jobCounter = 0

const positive = (name: string, value: number | undefined, fallback: number): number => {
  const v = value ?? fallback
  if (!Number.isInteger(v) || v < 1) throw new PlanError({ reason: `${name} must be a positive integer, got ${v}` })
  return v
}

/**
 * Plans and starts a job in the current scope and returns its handle at once.
 * Closing the scope cancels a job that is still running.
 */
export const submit = <R>(
  pipeline: Pipeline<R>,
  options: JobOptions = {}
): Effect.Effect<Job, PlanError, R | Scope.Scope> =>
  Effect.gen(function*() {
    const id = `job-${++jobCounter}`
    const name = options.name ?? id
    const guarantee = options.processingGuarantee ?? "none"
    const store = options.snapshotStore ?? SnapshotStore.memory()
    const { dag, executionOptions } = yield* Effect.try({
      try: () => {
        const dag = plan(pipeline, {
          parallelism: positive("parallelism", options.parallelism, 1),
          partitionCount: positive("partitionCount", options.partitionCount, DEFAULT_PARTITION_COUNT)
        })
        return {
          dag,
          executionOptions: {
            batchSize: positive("batchSize", options.batchSize, 1024),
            queueCapacity: positive("queueCapacity", options.queueCapacity, 4),
            snapshotInterval: positive("snapshotInterval", Duration.toMillis(options.snapshotInterval ?? "10 seconds"), 1)
          }
        }
      },
      catch: (e) => (e instanceof PlanError ? e : new PlanError({ reason: String(e) }))
    })
    const maxRestarts = options.maxRestarts ?? 10
    const tasklets = dag.vertices.reduce((n, v) => n + v.parallelism, 0)
    let restarts = 0
    let current = deploy(dag, { ...executionOptions, coordinator: undefined, restored: undefined })
    /** One execution, from `restored` (or the start); a failure restarts from the last complete snapshot. */
    const execute = (restored: Snapshot | undefined): Effect.Effect<void, unknown, any> =>
      Effect.suspend(() => {
        const coordinator = guarantee === "none"
          ? undefined
          : new Coordinator(name, store, tasklets, guarantee, restored?.id ?? 0)
        current = deploy(dag, { ...executionOptions, coordinator, restored })
        return Effect.catchCause(Effect.scoped(current.run), (cause) => {
          if (guarantee === "none" || Cause.hasInterruptsOnly(cause) || restarts >= maxRestarts) return Effect.failCause(cause)
          restarts++
          status = "restarting"
          return Effect.flatMap(store.latest(name), (snapshot) => {
            status = "running"
            return execute(snapshot)
          })
        })
      })
    let status: JobStatus = "running"
    const fiber = yield* execute(undefined).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          status = Exit.isSuccess(exit) ? "completed" : Cause.hasInterruptsOnly(exit.cause) ? "cancelled" : "failed"
        })
      ),
      Effect.forkScoped
    ) as Effect.Effect<Fiber.Fiber<void, JobError>, never, R | Scope.Scope>
    return {
      id,
      name,
      status: Effect.sync(() => status),
      metrics: Effect.sync(() => ({ instances: current.metrics(), restarts })),
      cancel: Fiber.interrupt(fiber),
      join: Effect.flatMap(Fiber.await(fiber), (exit) =>
        Exit.isSuccess(exit)
          ? Effect.void
          : Cause.hasInterruptsOnly(exit.cause)
          ? Effect.fail(new JobCancelledError({ job: name }))
          : Effect.failCause(exit.cause))
    }
  })

/** Runs a job to its end (bounded input) and releases its resources. */
export const run = <R>(pipeline: Pipeline<R>, options?: JobOptions): Effect.Effect<void, JobError, R> =>
  Effect.scoped(Effect.flatMap(submit(pipeline, options), (job) => job.join))
