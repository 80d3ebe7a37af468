import type { Effect } from "effect"
import type { Step } from "../operator/Operator.ts"
import type { Sink } from "../pipeline/Sink.ts"
import type { Source } from "../pipeline/Source.ts"

/** How an edge spreads the records of its producer instances over consumer instances. */
export type Routing =
  | { readonly _tag: "OneToOne" }
  | { readonly _tag: "Partitioned"; readonly stage: string; readonly key: (record: any) => unknown }
  | { readonly _tag: "Broadcast" }
  | { readonly _tag: "AllToOne" }
  | { readonly _tag: "RoundRobin" }

export interface Edge {
  readonly from: number
  readonly to: number
  /** Input ordinal at the consumer. */
  readonly ordinal: number
  /** Lower is consumed first: a consumer reads no input until all lower-priority inputs are done. */
  readonly priority: number
  readonly routing: Routing
}

/** Creates one step of a vertex instance; runs in the job's scope. */
export type StepFactory = (ctx: { readonly instance: number; readonly instances: number }) => Effect.Effect<
  Step,
  unknown,
  any
>

/** Instances `offset + instance` of `instances` of a sink that several vertices feed. */
export interface SideSink {
  readonly sink: Sink<any, any>
  readonly offset: number
  readonly instances: number
}

/**
 * A vertex: what one kind of tasklet does. A tasklet pulls batches from its
 * source or its input edges, runs them through its chain of steps (fused
 * stages) and sends the result to its sink or its output edges.
 */
export interface Vertex {
  readonly id: number
  readonly name: string
  readonly parallelism: number
  readonly source: Source<any, any> | undefined
  /** `stateKey` names a step's state in snapshots: its stage's name (plus a suffix for a first stage). */
  readonly steps: Array<{ readonly name: string; readonly stateKey: string; readonly make: StepFactory }>
  /** The unique stage name of the source, under which its positions are saved. */
  readonly sourceKey: string | undefined
  sink: Sink<any, any> | undefined
  /** Where records that arrive behind the watermark go (otherwise only counted). */
  lateSink: SideSink | undefined
  /** Where records its stages reject go (`Stage.decode`, `Stage.map` with `deadLetters`), shared likewise. */
  deadLetterSink: SideSink | undefined
  /** A source vertex that assigns timestamps reports itself idle after this long without data. */
  idleTimeout: number | undefined
}

export interface Dag {
  readonly vertices: ReadonlyArray<Vertex>
  readonly edges: ReadonlyArray<Edge>
  readonly partitionCount: number
}
