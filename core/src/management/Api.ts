/**
 * The management REST API, declared once with `effect`'s `HttpApi`: the
 * server, its OpenAPI document and its Swagger page all come from it. Every
 * endpoint needs the bearer token (`Authorization`): a job's name, graph,
 * metrics and failures are the operator's business, and an action changes a
 * running job.
 */
import { Context, Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity } from "effect/http-api"

/** The job is not known to this server. */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", { id: Schema.String }) {}

/** The action does not fit the job's state (e.g. resuming a running job). */
export class ActionRefused extends Schema.TaggedError<ActionRefused>()("ActionRefused", { reason: Schema.String }) {}

/** Marks a request that presented the token. */
export class Operator extends Context.Service<Operator, { readonly authenticated: true }>()("tributary/management/Operator") {}

/** Checks the bearer token of every request. */
export class Authorization extends HttpApiMiddleware.Service<Authorization, { readonly provides: Operator }>()("tributary/management/Authorization", {
  error: HttpApiError.Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const Status = Schema.Literals(["running", "restarting", "suspended", "completed", "failed", "cancelled"])

/** A job in a list: its id, name and status. */
export const JobView = Schema.Struct({ id: Schema.String, name: Schema.String, status: Status })

/** The job graph: vertices (fused stages) with their parallelism, edges with their kind of routing. */
export const Graph = Schema.Struct({
  vertices: Schema.Array(Schema.Struct({
    id: Schema.Number,
    name: Schema.String,
    parallelism: Schema.Number,
    source: Schema.NullOr(Schema.String),
    sink: Schema.NullOr(Schema.String)
  })),
  edges: Schema.Array(Schema.Struct({ from: Schema.Number, to: Schema.Number, kind: Schema.String }))
})

/** A job with its graph. */
export const JobDetail = Schema.Struct({ ...JobView.fields, graph: Graph })

/** One snapshot of the history (`SnapshotInfo`). */
export const Snapshot = Schema.Struct({
  id: Schema.Number,
  start: Schema.Number,
  duration: Schema.NullOr(Schema.Number),
  alignment: Schema.NullOr(Schema.Number),
  bytes: Schema.Number,
  keys: Schema.Number,
  status: Schema.Literals(["in-progress", "completed", "failed"])
})

/** One failure of the history (`JobException`). */
export const Exception = Schema.Struct({ time: Schema.Number, message: Schema.String, restarted: Schema.Boolean })

/** `InstanceMetrics` in JSON: a watermark or lag not there yet is `null`. */
export const Instance = Schema.Struct({
  vertex: Schema.String,
  instance: Schema.Number,
  source: Schema.NullOr(Schema.String),
  sink: Schema.NullOr(Schema.String),
  recordsIn: Schema.Number,
  recordsOut: Schema.Number,
  recordsInRate: Schema.Number,
  recordsOutRate: Schema.Number,
  batchesIn: Schema.Number,
  batchesOut: Schema.Number,
  idleTimeMsPerSecond: Schema.Number,
  backPressuredTimeMsPerSecond: Schema.Number,
  busyTimeMsPerSecond: Schema.Number,
  lateEvents: Schema.Number,
  retries: Schema.Number,
  deadLetters: Schema.Number,
  watermark: Schema.NullOr(Schema.Number),
  watermarkLag: Schema.NullOr(Schema.Number),
  queues: Schema.Array(Schema.Struct({ size: Schema.Number, highWater: Schema.Number, capacity: Schema.Number })),
  progress: Schema.NullOr(Schema.Struct({ done: Schema.Number, total: Schema.Number }))
})

/** `JobMetrics` in JSON. */
export const Metrics = Schema.Struct({
  time: Schema.Number,
  instances: Schema.Array(Instance),
  restarts: Schema.Number,
  snapshots: Schema.Array(Snapshot),
  exceptions: Schema.Array(Exception)
})

const id = { id: Schema.String }
const notFound = JobNotFound.pipe(HttpApiSchema.status(404))
const refused = [notFound, ActionRefused.pipe(HttpApiSchema.status(409))] as const

/** Reading: jobs, a job's status and graph, its metrics, snapshots and failures. */
export class Jobs extends HttpApiGroup.make("jobs").add(
  HttpApiEndpoint.get("list", "/jobs", { success: Schema.Array(JobView) }),
  HttpApiEndpoint.get("get", "/jobs/:id", { params: id, success: JobDetail, error: notFound }),
  HttpApiEndpoint.get("metrics", "/jobs/:id/metrics", { params: id, success: Metrics, error: notFound }),
  HttpApiEndpoint.get("snapshots", "/jobs/:id/snapshots", { params: id, success: Schema.Array(Snapshot), error: notFound }),
  HttpApiEndpoint.get("exceptions", "/jobs/:id/exceptions", { params: id, success: Schema.Array(Exception), error: notFound })
).middleware(Authorization) {}

/** Acting: each answers with the job's status after the action. */
export class Actions extends HttpApiGroup.make("actions").add(
  HttpApiEndpoint.post("cancel", "/jobs/:id/cancel", { params: id, success: JobView, error: refused }),
  HttpApiEndpoint.post("suspend", "/jobs/:id/suspend", { params: id, success: JobView, error: refused }),
  HttpApiEndpoint.post("resume", "/jobs/:id/resume", { params: id, success: JobView, error: refused }),
  HttpApiEndpoint.post("restart", "/jobs/:id/restart", { params: id, success: JobView, error: refused }),
  HttpApiEndpoint.post("stop", "/jobs/:id/stop", {
    params: id,
    query: { drain: Schema.optional(Schema.Literals(["true", "false"])) },
    success: JobView,
    error: refused
  }),
  HttpApiEndpoint.post("exportSnapshot", "/jobs/:id/snapshots/export", {
    params: id,
    payload: Schema.Struct({ name: Schema.String }),
    success: JobView,
    error: refused
  }),
  HttpApiEndpoint.delete("deleteSnapshot", "/jobs/:id/snapshots/:name", {
    params: { ...id, name: Schema.String },
    success: JobView,
    error: refused
  })
).middleware(Authorization) {}

/** A member of the cluster as its coordinator sees it. */
export const MemberView = Schema.Struct({
  index: Schema.Number,
  host: Schema.String,
  port: Schema.Number,
  state: Schema.Literals(["up", "left", "dead"]),
  /** Whether the coordinator (and this server) runs in its process. */
  coordinator: Schema.Boolean
})

/** A job handed to a cluster: the module its members import, and how to run it. */
export const Submission = Schema.Struct({
  module: Schema.String,
  export: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  guarantee: Schema.optional(Schema.Literals(["none", "at-least-once", "exactly-once"])),
  parallelism: Schema.optional(Schema.Number),
  snapshotIntervalMs: Schema.optional(Schema.Number),
  scaleUpDelayMs: Schema.optional(Schema.Number),
  maxFailures: Schema.optional(Schema.Number),
  failureIntervalMs: Schema.optional(Schema.Number)
})

/** The cluster: its members, and submitting a job (an embedded server has no members and takes no submission). */
export class Cluster extends HttpApiGroup.make("cluster").add(
  HttpApiEndpoint.get("members", "/members", { success: Schema.Array(MemberView) }),
  HttpApiEndpoint.post("submit", "/jobs", { payload: Submission, success: JobView, error: ActionRefused.pipe(HttpApiSchema.status(409)) })
).middleware(Authorization) {}

/** The whole API, under `/api`. */
export class Api extends HttpApi.make("tributary").add(Jobs).add(Actions).add(Cluster).prefix("/api") {}
