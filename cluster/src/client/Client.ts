/**
 * Submitting a job to a running cluster: the client finds the coordinator in
 * the registry, proves the cluster secret and hands it (`Control.ts`) the module
 * that exports the pipeline (the members import it: it must be reachable at
 * that path or URL on each of them). The job's status lives in the registry.
 * The coordinator may move meanwhile (a member joined or died): the client then
 * follows the registry to the next one and submits again, which is safe as a
 * job is known by its name (an identical submission of a job that exists is
 * accepted without starting a second copy).
 */
import { PgClient } from "@effect/sql-pg"
import { Data, type Duration, Effect, Redacted, Schedule } from "effect"
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
  /** How long to follow the registry to a coordinator that can be reached, while it moves (default 30 seconds). */
  readonly connectTimeout?: Duration.Input | undefined
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

/** The coordinator the registry named could not be reached, or went away mid-call: another may be on its way. */
class Unreachable extends Data.TaggedError("Unreachable")<{ readonly reason: string }> {}

/** Hands `submission` to the coordinator the registry names now. */
const submitOnce = (cluster: string, secret: string, submission: Control.Submission) =>
  Effect.scoped(Effect.gen(function*() {
    const address = yield* Registry.coordinator(cluster)
    if (!address) return yield* new Unreachable({ reason: `cluster "${cluster}" has no coordinator` })
    const control = yield* Control.connect(address.host, address.port, secret)
    return yield* control.submit(submission)
  })).pipe(
    Effect.catchTags({
      LinkConnectError: (error) => Effect.fail(new Unreachable({ reason: error.message })),
      // Cut short by the connection (the coordinator stopped, its port is another's now), not refused.
      LinkAuthError: (error) => Effect.fail(error.cause === undefined ? error : new Unreachable({ reason: error.message })),
      RpcClientError: (error) => Effect.fail(new Unreachable({ reason: error.message }))
    })
  )

/** Submits the job; returns its name once the coordinator accepted it. */
export const submit = (options: SubmitOptions) =>
  Effect.gen(function*() {
    const submission = yield* Effect.mapError(Control.submission(options), (reason) => new JobError({ job: options.name ?? options.module, reason }))
    const { name } = submission
    const reply = yield* submitOnce(options.cluster, options.secret, submission).pipe(
      Effect.retry({
        while: (error) => error._tag === "Unreachable",
        schedule: Schedule.spaced("200 millis").pipe(Schedule.upTo({ duration: options.connectTimeout ?? "30 seconds" }))
      }),
      Effect.catchTag("Unreachable", (error) => Effect.fail(new JobError({ job: name, reason: error.reason })))
    )
    if (reply._tag === "Rejected") return yield* new JobError({ job: name, reason: reply.reason })
    return name
  }).pipe(withRegistry(options.postgres))

/** Waits for the job's end; fails with its reason if it failed or was cancelled. */
export const awaitJob = (options: ClusterAddress & { readonly name: string }) =>
  Effect.gen(function*() {
    const job = yield* Effect.repeat(Registry.job(options.cluster, options.name), {
      // A suspended job will go on when it is resumed.
      until: (j) => j === undefined || (j.status !== "running" && j.status !== "suspended"),
      schedule: Schedule.spaced("200 millis")
    })
    if (!job) return yield* new JobError({ job: options.name, reason: "no such job" })
    if (job.status === "failed") return yield* new JobError({ job: options.name, reason: job.reason ?? "failed" })
    if (job.status === "cancelled") return yield* new JobError({ job: options.name, reason: "cancelled" })
  }).pipe(withRegistry(options.postgres))
