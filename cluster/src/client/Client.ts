/**
 * Submitting a job to a running cluster: the client finds the coordinator in
 * the registry, proves the cluster secret and hands it (`Control.ts`) the module
 * that exports the pipeline (the members import it: it must be reachable at
 * that path or URL on each of them). The job's status lives in the registry.
 */
import { PgClient } from "@effect/sql-pg"
import { Data, Duration, Effect, Redacted, Schedule } from "effect"
import * as Control from "../coordinator/Control.ts"
import type { JobSettings } from "../coordinator/JobCoordinator.ts"
import * as Registry from "../coordinator/Registry.ts"

export interface ClusterAddress {
  readonly cluster: string
  /** The cluster's PostgreSQL. */
  readonly postgres: string
}

export interface SubmitOptions extends ClusterAddress, JobSettings {
  readonly secret: string
  /** Unique in the cluster (default: the module's file name and the time). */
  readonly name?: string | undefined
}

/** The cluster refused the job, or the job failed. */
export class JobError extends Data.TaggedError("JobError")<{
  readonly job: string
  readonly reason: string
}> {
  override get message() {
    return `job "${this.job}": ${this.reason}`
  }
}

const withRegistry = (postgres: string) => Effect.provide(PgClient.layer({ url: Redacted.make(postgres) }))

/** Submits the job; returns its name once the coordinator accepted it. */
export const submit = (options: SubmitOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const address = yield* Registry.coordinator(options.cluster)
    if (!address) return yield* new JobError({ job: options.name ?? options.module, reason: `cluster "${options.cluster}" has no coordinator` })
    const name = options.name ?? `${options.module.split("/").pop()}-${Date.now()}`
    const control = yield* Control.connect(address.host, address.port, options.secret)
    const reply = yield* control.submit({
      name,
      module: options.module,
      export: options.export ?? "pipeline",
      options: {
        guarantee: options.processingGuarantee ?? "none",
        parallelism: options.parallelism ?? 1,
        snapshotIntervalMs: Duration.toMillis(options.snapshotInterval ?? "10 seconds"),
        scaleUpDelayMs: Duration.toMillis(options.scaleUpDelay ?? "10 seconds"),
        maxRestarts: options.maxRestarts ?? 10
      }
    })
    if (reply._tag === "Rejected") return yield* new JobError({ job: name, reason: reply.reason })
    return name
  })).pipe(withRegistry(options.postgres))

/** Waits for the job's end; fails with its reason if it failed. */
export const awaitJob = (options: ClusterAddress & { readonly name: string }) =>
  Effect.gen(function*() {
    const job = yield* Effect.repeat(Registry.job(options.cluster, options.name), {
      until: (j) => j === undefined || j.status !== "running",
      schedule: Schedule.spaced("200 millis")
    })
    if (!job) return yield* new JobError({ job: options.name, reason: "no such job" })
    if (job.status === "failed") return yield* new JobError({ job: options.name, reason: job.reason ?? "failed" })
  }).pipe(withRegistry(options.postgres))
