/**
 * The management server of an embedded job: the REST API (`Api`) with its
 * OpenAPI document and Swagger page, a Prometheus endpoint and the web
 * dashboard, on one port of 127.0.0.1 by default. Every job submitted where
 * `Management.layer` is provided is listed. Each request but the dashboard's
 * static files and the API's description needs the bearer token: without it
 * nothing about a job can be read and nothing changed.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, FileSystem, Layer, Redacted } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiError, HttpApiSwagger } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import * as Http from "node:http"
import { fileURLToPath } from "node:url"
import type { JobMetrics } from "../runtime/Metrics.ts"
import { ActionRefused, Api, Authorization, JobNotFound, type MemberView, Operator, type Submission } from "./Api.ts"
import * as Jobs from "./Jobs.ts"

export interface ManagementOptions {
  /** Port to listen on (default 8081; 0: any free port, read it from `HttpServer`). */
  readonly port?: number | undefined
  /** Interface to listen on (default 127.0.0.1: only this machine). */
  readonly host?: string | undefined
  /** The bearer token every API request must present (`Authorization: Bearer <token>`). */
  readonly token: string | Redacted.Redacted<string>
}

/** Compares without an early exit, so timing does not tell how much of a guess was right. */
const sameToken = (a: string, b: string): boolean => {
  let diff = a.length ^ b.length
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0)
  return diff === 0
}

const authorization = (token: string) =>
  Layer.succeed(Authorization)({
    bearer: (effect, { credential }) =>
      sameToken(Redacted.value(credential), token)
        ? Effect.provideService(effect, Operator, { authenticated: true })
        : Effect.fail(new HttpApiError.Unauthorized())
  })

const find = (registry: Jobs.Registry, id: string) =>
  Effect.suspend(() => {
    const entry = registry.get(id)
    return entry ? Effect.succeed(entry) : Effect.fail(new JobNotFound({ id }))
  })

const view = (job: Jobs.ManagedJob) => Effect.map(job.status, (status) => ({ id: job.id, name: job.name, status }))

/** Metrics in JSON: what is not there yet (a watermark, a lag, a duration) is `null`. */
const toJson = (m: JobMetrics) => ({
  ...m,
  instances: m.instances.map((i) => ({
    ...i,
    source: i.source ?? null,
    sink: i.sink ?? null,
    watermark: Number.isFinite(i.watermark) ? i.watermark : null,
    watermarkLag: i.watermarkLag ?? null,
    progress: i.progress ?? null
  })),
  snapshots: m.snapshots.map((s) => ({ ...s, duration: s.duration ?? null, alignment: s.alignment ?? null }))
})

const graphJson = (graph: Jobs.Graph) => ({
  vertices: graph.vertices.map((v) => ({ ...v, source: v.source ?? null, sink: v.sink ?? null })),
  edges: graph.edges
})

const jobsGroup = (registry: Jobs.Registry) =>
  HttpApiBuilder.group(Api, "jobs", (handlers) =>
    handlers
      .handle("list", () => Effect.forEach([...registry.values()], (e) => view(e.job)))
      .handle("get", ({ params }) =>
        Effect.flatMap(find(registry, params.id), (e) => Effect.map(view(e.job), (v) => ({ ...v, graph: graphJson(e.graph) }))))
      .handle("metrics", ({ params }) => Effect.flatMap(find(registry, params.id), (e) => Effect.map(e.job.metrics, toJson)))
      .handle("snapshots", ({ params }) =>
        Effect.flatMap(find(registry, params.id), (e) => Effect.map(e.job.metrics, (m) => toJson(m).snapshots)))
      .handle("exceptions", ({ params }) => Effect.flatMap(find(registry, params.id), (e) => Effect.map(e.job.metrics, (m) => m.exceptions))))

/** Runs `action` on job `id` and answers with its status after; a refusal (its state) is a 409 naming the reason. */
const act = (registry: Jobs.Registry, id: string, action: (job: Jobs.ManagedJob) => Effect.Effect<void, unknown>) =>
  Effect.flatMap(find(registry, id), ({ job }) =>
    action(job).pipe(
      Effect.mapError((e) => new ActionRefused({ reason: e instanceof Error ? e.message : String(e) })),
      Effect.andThen(view(job))
    ))

const actionsGroup = (registry: Jobs.Registry) =>
  HttpApiBuilder.group(Api, "actions", (handlers) =>
    handlers
      .handle("cancel", ({ params }) => act(registry, params.id, (job) => job.cancel))
      .handle("suspend", ({ params }) => act(registry, params.id, (job) => job.suspend))
      .handle("resume", ({ params }) => act(registry, params.id, (job) => job.resume))
      .handle("restart", ({ params }) => act(registry, params.id, (job) => job.restart))
      .handle("stop", ({ params, query }) => act(registry, params.id, (job) => job.stop({ drain: query.drain !== "false" })))
      .handle("exportSnapshot", ({ params, payload }) => act(registry, params.id, (job) => job.exportSnapshot(payload.name)))
      .handle("deleteSnapshot", ({ params }) => act(registry, params.id, (job) => job.deleteSnapshot(params.name))))

/** What a cluster's coordinator adds: its members, and submissions. */
export interface ClusterHandlers {
  readonly members: Effect.Effect<ReadonlyArray<typeof MemberView.Type>>
  /** Starts the job; fails with the reason it was refused. */
  readonly submit: (submission: typeof Submission.Type) => Effect.Effect<Jobs.ManagedJob, string>
}

const embedded: ClusterHandlers = {
  members: Effect.succeed([]),
  submit: () => Effect.fail("this server manages the jobs of one process: submit to a cluster's coordinator")
}

const clusterGroup = (handlers: ClusterHandlers) =>
  HttpApiBuilder.group(Api, "cluster", (h) =>
    h
      .handle("members", () => handlers.members)
      .handle("submit", ({ payload }) =>
        handlers.submit(payload).pipe(Effect.mapError((reason) => new ActionRefused({ reason })), Effect.flatMap(view))))

/** `GET /metrics`: every Effect metric of the process (Tributary's and the user's) in Prometheus' text format. */
const prometheus = (token: string) =>
  HttpRouter.add("GET", "/metrics", (request: HttpServerRequest.HttpServerRequest) => {
    const header = request.headers["authorization"] ?? ""
    if (!header.startsWith("Bearer ") || !sameToken(header.slice(7), token)) return Effect.succeed(HttpServerResponse.empty({ status: 401 }))
    return Effect.map(PrometheusMetrics.format(), (text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4" }))
  })

const dashboardFiles = [
  ["/", "index.html", "text/html; charset=utf-8"],
  ["/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"],
  ["/dashboard.css", "dashboard.css", "text/css; charset=utf-8"]
] as const

/** The dashboard: static files, read once; they hold no data (it comes from the API, with the token). */
const dashboard = Layer.unwrap(Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = fileURLToPath(new URL("./dashboard/", import.meta.url))
  const routes = yield* Effect.forEach(dashboardFiles, ([path, file, contentType]) =>
    Effect.map(fs.readFileString(dir + file), (body) => HttpRouter.add("GET", path, HttpServerResponse.text(body, { contentType }))))
  return Layer.mergeAll(...routes)
}))

/**
 * Serves the management API, `/metrics` and the dashboard for the jobs in
 * `registry` (and, on a cluster's coordinator, its members and submissions)
 * until the layer's scope closes.
 */
export const serve = (registry: Jobs.Registry, options: ManagementOptions, cluster: ClusterHandlers = embedded) =>
  Layer.unwrap(Effect.sync(() => {
    const token = Redacted.isRedacted(options.token) ? Redacted.value(options.token) : options.token
    const api = HttpApiBuilder.layer(Api, { openapiPath: "/api/openapi.json" }).pipe(
      Layer.provide([jobsGroup(registry), actionsGroup(registry), clusterGroup(cluster)]),
      Layer.provide(authorization(token))
    )
    const app = Layer.mergeAll(api, HttpApiSwagger.layer(Api, { path: "/docs" }), prometheus(token), dashboard)
    return HttpRouter.serve(app, { disableListenLog: true, disableLogger: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { port: options.port ?? 8081, host: options.host ?? "127.0.0.1" }))
    )
  }))

/**
 * Serves the management API, `/metrics` and the dashboard for the jobs
 * submitted where this layer is provided, until its scope closes.
 */
export const layer = (options: ManagementOptions) =>
  Layer.unwrap(Effect.sync(() => {
    const registry: Jobs.Registry = new Map()
    return Layer.merge(Layer.succeed(Jobs.Current, registry), serve(registry, options))
  }))
