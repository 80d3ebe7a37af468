/**
 * The jobs a management server shows. `Tributary.submit` adds each job it
 * starts to the registry in its context, if there is one
 * (`Management.layer` provides it); without one, nothing is kept.
 */
import { Context, type Effect } from "effect"
import type { JobStatus } from "../job/Job.ts"
import type { JobMetrics } from "../runtime/Metrics.ts"
import type { Dag } from "../plan/Dag.ts"

/** The job graph as an operator sees it: vertices (fused stages) and edges with their routing. */
export interface Graph {
  readonly vertices: ReadonlyArray<{
    readonly id: number
    readonly name: string
    readonly parallelism: number
    readonly source: string | undefined
    readonly sink: string | undefined
  }>
  readonly edges: ReadonlyArray<{
    readonly from: number
    readonly to: number
    /** `OneToOne`, `Partitioned`, `Broadcast`, `AllToOne` or `RoundRobin`. */
    readonly kind: string
  }>
}

/**
 * What a management server needs of a job: a `Job` handle, or a cluster's view of a job
 * its coordinator runs over the members. A refused action fails with its reason.
 */
export interface ManagedJob {
  readonly id: string
  readonly name: string
  readonly status: Effect.Effect<JobStatus>
  readonly metrics: Effect.Effect<JobMetrics>
  readonly cancel: Effect.Effect<void>
  readonly suspend: Effect.Effect<void, unknown>
  readonly resume: Effect.Effect<void, unknown>
  readonly restart: Effect.Effect<void, unknown>
  readonly stop: (options?: { readonly drain?: boolean | undefined }) => Effect.Effect<void, unknown>
  readonly exportSnapshot: (name: string) => Effect.Effect<void, unknown>
  readonly deleteSnapshot: (name: string) => Effect.Effect<void, unknown>
}

/** A managed job: its handle and its graph. */
export interface Entry {
  readonly job: ManagedJob
  readonly graph: Graph
}

/** Jobs by id, in the order they were submitted. */
export type Registry = Map<string, Entry>

/** The registry `Tributary.submit` adds its jobs to (none by default). */
export const Current = Context.Reference<Registry | undefined>("tributary/management/Jobs", { defaultValue: () => undefined })

/** The graph of a planned job. */
export const graphOf = (dag: Dag): Graph => ({
  vertices: dag.vertices.map((v) => ({ id: v.id, name: v.name, parallelism: v.parallelism, source: v.source?.name, sink: v.sink?.name })),
  edges: dag.edges.map((e) => ({ from: e.from, to: e.to, kind: e.routing._tag }))
})
