/**
 * The jobs a management server shows. `Tributary.submit` adds each job it
 * starts to the registry in its context, if there is one
 * (`Management.layer` provides it); without one, nothing is kept.
 */
import { Context } from "effect"
import type { Job } from "../job/Job.ts"
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

/** A managed job: its handle and its graph. */
export interface Entry {
  readonly job: Job<unknown>
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
