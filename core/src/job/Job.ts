import { Cause, Effect, Exit, Fiber, type Scope } from "effect"
import { JobCancelledError, type JobError, PlanError } from "../errors.ts"
import { plan } from "../plan/Planner.ts"
import { DEFAULT_PARTITION_COUNT } from "../plan/partition.ts"
import type { Pipeline } from "../pipeline/Pipeline.ts"
import { deploy } from "../runtime/Execution.ts"
import type { JobMetrics } from "../runtime/Metrics.ts"

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
}

export type JobStatus = "running" | "completed" | "failed" | "cancelled"

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
    const execution = yield* Effect.try({
      try: () => {
        const dag = plan(pipeline, {
          parallelism: positive("parallelism", options.parallelism, 1),
          partitionCount: positive("partitionCount", options.partitionCount, DEFAULT_PARTITION_COUNT)
        })
        return deploy(dag, {
          batchSize: positive("batchSize", options.batchSize, 1024),
          queueCapacity: positive("queueCapacity", options.queueCapacity, 4)
        })
      },
      catch: (e) => (e instanceof PlanError ? e : new PlanError({ reason: String(e) }))
    })
    let status: JobStatus = "running"
    const fiber = yield* execution.run.pipe(
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
      metrics: Effect.sync(() => ({ instances: execution.metrics() })),
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
