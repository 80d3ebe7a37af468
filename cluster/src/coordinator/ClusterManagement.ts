/**
 * The management server of a cluster, served by its coordinator wherever the
 * singleton runs: core's REST API, `/metrics` and dashboard over the cluster's
 * jobs (their counters are what the members report each second), its members,
 * and submissions. Its token is the cluster secret. A port that cannot be had
 * is retried and logged, never a reason for the coordinator to stop.
 */
import { type JobMetrics, Management, type ManagementApi, type ManagementJobs, Platform, RestartPolicy, SnapshotStore } from "@tributary/core"
import { Cause, Context, Duration, Effect, Layer, Schedule } from "effect"
import { HttpServer } from "effect/http"
import * as Control from "./Control.ts"
import type * as JobCoordinator from "./JobCoordinator.ts"
import type * as Registry from "./Registry.ts"

export interface ClusterManagementOptions {
  /** Default 8081. */
  readonly port?: number | undefined
  /** Default: the interface the members listen on. */
  readonly host?: string | undefined
}

/** A graph not known yet (no member has reported it). */
export const noGraph: ManagementJobs.Graph = { vertices: [], edges: [] }

/** What the management server sees of a job of the cluster. */
export interface ClusterJob {
  readonly row: Registry.JobRow
  readonly state: Registry.JobState
  readonly coordinator: JobCoordinator.JobCoordinator | undefined
  readonly history: JobCoordinator.History
  readonly last: JobMetrics | undefined
}

/** A job of the cluster as a managed job: its id is its name (unique in the cluster). */
export const managed = (
  job: ClusterJob,
  steer: {
    readonly store: SnapshotStore.SnapshotStore
    /** The services of the snapshot store. */
    readonly context: Context.Context<never>
    readonly cancel: () => Effect.Effect<void>
    readonly drain: () => Effect.Effect<void, unknown>
    readonly suspend: () => Effect.Effect<void, JobCoordinator.ClusterStateError>
    readonly resume: () => Effect.Effect<void, JobCoordinator.ClusterStateError>
  }
): ManagementJobs.ManagedJob => {
  const name = job.row.name
  const { store } = steer
  const withStore = <E>(effect: Effect.Effect<void, E, any>) => Effect.provideContext(effect, steer.context) as Effect.Effect<void, E>
  const running = Effect.suspend(() =>
    job.coordinator ? Effect.succeed(job.coordinator) : Effect.fail(new Error(`the job is ${job.state}`))
  )
  return {
    id: name,
    name,
    status: Effect.sync(() => job.state),
    // A job not running shows what it did: its last counters, snapshots and failures.
    metrics: Effect.suspend(() =>
      job.coordinator?.metrics ??
        Effect.sync((): JobMetrics => ({
          time: Date.now(),
          instances: job.last?.instances.map((i) => ({ ...i, recordsInRate: 0, recordsOutRate: 0 })) ?? [],
          restarts: job.last?.restarts ?? 0,
          snapshots: [...job.history.snapshots],
          exceptions: [...job.history.exceptions]
        }))
    ),
    cancel: Effect.suspend(steer.cancel),
    suspend: Effect.suspend(steer.suspend),
    resume: Effect.suspend(steer.resume),
    restart: Effect.flatMap(running, (c) => c.restart),
    stop: (options) => (options?.drain === false ? steer.suspend() : steer.drain()),
    // The newest complete snapshot, kept under `exportName` (a job started with initialSnapshot: exportName resumes from it).
    exportSnapshot: (exportName) =>
      withStore(Effect.flatMap(SnapshotStore.latest(store, name), (snapshot) =>
        snapshot ? store.save({ ...snapshot, job: exportName }) : Effect.fail(new Error("no complete snapshot to export")))),
    deleteSnapshot: (exportName) =>
      exportName === name
        ? Effect.fail(new Error(`"${name}" names the job's own snapshots`))
        : withStore(Effect.flatMap(store.ids(exportName), (ids) =>
          ids.length === 0 ? Effect.fail(new Error(`no snapshot exported as "${exportName}"`)) : SnapshotStore.clear(store, exportName)))
  }
}

/** A submission over REST: the module must be a path or URL every member can import. */
const fromApi = (s: typeof ManagementApi.Submission.Type) =>
  /^[a-z]+:|^\//.test(s.module)
    ? Control.submission({
      module: s.module,
      export: s.export,
      name: s.name,
      processingGuarantee: s.guarantee,
      parallelism: s.parallelism,
      snapshotInterval: s.snapshotIntervalMs === undefined ? undefined : Duration.millis(s.snapshotIntervalMs),
      scaleUpDelay: s.scaleUpDelayMs === undefined ? undefined : Duration.millis(s.scaleUpDelayMs),
      restartPolicy: s.maxFailures === undefined && s.failureIntervalMs === undefined
        ? undefined
        : RestartPolicy.failureRate(s.maxFailures ?? RestartPolicy.defaultPolicy.maxFailures, s.failureIntervalMs ?? RestartPolicy.defaultPolicy.interval)
    })
    : Effect.fail(`the module must be an absolute path or a URL the members can import, got "${s.module}"`)

/** Serves the cluster's management in the current scope, retrying its port until it can be had. */
export const serve = (
  listed: ManagementJobs.Registry,
  options: {
    readonly port?: number | undefined
    readonly host: string
    readonly secret: string
    readonly members: () => ReadonlyArray<typeof ManagementApi.MemberView.Type>
    readonly submit: (submission: Control.Submission) => Effect.Effect<ManagementJobs.ManagedJob, string>
  }
) =>
  Effect.forkScoped(
    Effect.scoped(Effect.gen(function*() {
      const served = yield* Layer.build(
        Management.serve(listed, { port: options.port ?? 8081, host: options.host, token: options.secret }, {
          members: Effect.sync(options.members),
          submit: (s) => Effect.flatMap(fromApi(s), options.submit)
        }).pipe(Layer.provide(Platform.layer))
      )
      const { address } = Context.get(served, HttpServer.HttpServer)
      yield* Effect.logInfo(`management server listens on http://${options.host}:${(address as { port: number }).port}`)
      return yield* Effect.never
    })).pipe(
      Effect.tapCause((cause) => Effect.logWarning(`the management server on ${options.host}:${options.port ?? 8081} failed; retrying: ${Cause.pretty(cause)}`)),
      Effect.retry(Schedule.spaced("2 seconds"))
    )
  )
