/**
 * What a cluster keeps in PostgreSQL beside effect/cluster's own tables (its
 * runners and shard locks): where the coordinator listens, and the jobs. A
 * coordinator that takes over finds the running job and the execution number
 * to continue from here; members and clients find the coordinator here.
 */
import { RestartPolicy } from "@tributary/core"
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"

export interface CoordinatorAddress {
  readonly host: string
  readonly port: number
  /** Grows with each coordinator that takes over. */
  readonly epoch: number
}

export interface JobOptions {
  readonly guarantee: "none" | "at-least-once" | "exactly-once"
  readonly parallelism: number
  readonly snapshotIntervalMs: number
  readonly scaleUpDelayMs: number
  /** The restart policy: at most `maxFailures` failures within `failureIntervalMs` (null: in all). */
  readonly maxFailures: number
  readonly failureIntervalMs: number | null
  /** Its backoff (absent in rows of older versions: the default). */
  readonly restartDelayMs?: number | undefined
  readonly restartMaxDelayMs?: number | undefined
}

/** A restart policy as the registry keeps it (JSON has no infinity: an unbounded interval is null). */
export const encodePolicy = (policy: RestartPolicy.RestartPolicy): Pick<JobOptions, "maxFailures" | "failureIntervalMs" | "restartDelayMs" | "restartMaxDelayMs"> => {
  const ms = Duration.toMillis(policy.interval)
  return {
    maxFailures: policy.maxFailures,
    failureIntervalMs: Number.isFinite(ms) ? ms : null,
    restartDelayMs: Duration.toMillis(policy.delay),
    restartMaxDelayMs: Duration.toMillis(policy.maxDelay)
  }
}

export const decodePolicy = (options: JobOptions): RestartPolicy.RestartPolicy =>
  RestartPolicy.failureRate(options.maxFailures, options.failureIntervalMs ?? Duration.infinity, {
    delay: options.restartDelayMs,
    maxDelay: options.restartMaxDelayMs
  })

export type JobState = "running" | "suspended" | "completed" | "failed" | "cancelled"

export interface JobRow {
  readonly name: string
  readonly module: string
  readonly export: string
  readonly options: JobOptions
  /** Fixed when the job first starts: a source's instances must not change. */
  readonly sourceParallelism: number | null
  /** `suspended`: stopped at a terminal snapshot by the operator, to be resumed from it. */
  readonly status: JobState
  readonly reason: string | null
}

const ensured = new WeakSet<object>()

/** Creates the tables once per client. */
const tables = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  if (ensured.has(sql)) return sql
  yield* sql`create table if not exists tributary_coordinators (
    cluster text primary key, host text not null, port integer not null,
    epoch bigint not null, executions bigint not null default 0)`
  yield* sql`create table if not exists tributary_jobs (
    cluster text not null, name text not null, module text not null, export text not null,
    options jsonb not null, source_parallelism integer, status text not null, reason text,
    primary key (cluster, name))`
  ensured.add(sql)
  return sql
})

/** A new coordinator announces itself; returns its epoch and the executions numbered so far. */
export const publishCoordinator = (cluster: string, host: string, port: number) =>
  Effect.flatMap(tables, (sql) =>
    sql<{ epoch: string; executions: string }>`insert into tributary_coordinators (cluster, host, port, epoch)
      values (${cluster}, ${host}, ${port}, 1)
      on conflict (cluster) do update set host = excluded.host, port = excluded.port,
        epoch = tributary_coordinators.epoch + 1
      returning epoch, executions`.pipe(Effect.map(([row]) => ({ epoch: Number(row!.epoch), executions: Number(row!.executions) }))))

export const coordinator = (cluster: string): Effect.Effect<CoordinatorAddress | undefined, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(tables, (sql) =>
    sql<{ host: string; port: number; epoch: string }>`select host, port, epoch from tributary_coordinators where cluster = ${cluster}`.pipe(
      Effect.map(([row]) => row && { host: row.host, port: row.port, epoch: Number(row.epoch) })
    ))

/** Execution numbers go on growing across jobs and coordinators, so a member never mistakes an old one for a new one. */
export const recordExecution = (cluster: string, execution: number) =>
  Effect.flatMap(tables, (sql) => sql`update tributary_coordinators set executions = greatest(executions, ${execution}) where cluster = ${cluster}`)

const toJob = (row: any): JobRow => ({
  name: row.name,
  module: row.module,
  export: row.export,
  options: typeof row.options === "string" ? JSON.parse(row.options) : row.options,
  sourceParallelism: row.source_parallelism,
  status: row.status,
  reason: row.reason
})

/** Adds a job; false if one of that name exists. */
export const addJob = (cluster: string, job: Pick<JobRow, "name" | "module" | "export" | "options">) =>
  Effect.flatMap(tables, (sql) =>
    sql`insert into tributary_jobs (cluster, name, module, export, options, status)
      values (${cluster}, ${job.name}, ${job.module}, ${job.export}, ${JSON.stringify(job.options)}::jsonb, 'running')
      on conflict do nothing returning name`.pipe(Effect.map((rows) => rows.length === 1)))

export const job = (cluster: string, name: string) =>
  Effect.flatMap(tables, (sql) =>
    sql`select * from tributary_jobs where cluster = ${cluster} and name = ${name}`.pipe(Effect.map(([row]) => row && toJob(row))))

/** The jobs of the cluster that have not ended: running or suspended. */
export const currentJobs = (cluster: string) =>
  Effect.flatMap(tables, (sql) =>
    sql`select * from tributary_jobs where cluster = ${cluster} and status in ('running', 'suspended') order by name`.pipe(
      Effect.map((rows) => rows.map(toJob))
    ))

export const fixSourceParallelism = (cluster: string, name: string, sourceParallelism: number) =>
  Effect.flatMap(tables, (sql) =>
    sql`update tributary_jobs set source_parallelism = ${sourceParallelism} where cluster = ${cluster} and name = ${name}`)

export const setState = (cluster: string, name: string, status: JobState, reason: string | null) =>
  Effect.flatMap(tables, (sql) =>
    sql`update tributary_jobs set status = ${status}, reason = ${reason} where cluster = ${cluster} and name = ${name}`)
