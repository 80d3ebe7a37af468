/**
 * A pipeline is a value: sources, stages and sinks wired together. Build one
 * with `Pipeline.from(source)` and `Stage` combinators ending in
 * `Stage.writeTo(sink)`; join several with `Pipeline.make`.
 */
import type { Source } from "./Source.ts"
import { makePipeline, makeStage, type Pipeline, type Stage, type Unkeyed } from "./StageValue.ts"

export type { Pipeline } from "./StageValue.ts"
export { isPipeline } from "./StageValue.ts"

/** The first stage of a pipeline: the records of `source`. */
export const from = <A, R>(source: Source<A, R>): Stage<A, Unkeyed, never, R> => makeStage({ kind: "source", source })

/** One pipeline with all the sinks of `pipelines` (a job with several outputs). */
export const make = <const P extends ReadonlyArray<Pipeline<any, any>>>(
  ...pipelines: P
): Pipeline<Errors<P[number]>, Requirements<P[number]>> => makePipeline(pipelines.flatMap((p) => p.sinks))

type Errors<P> = P extends Pipeline<infer E, any> ? E : never
type Requirements<P> = P extends Pipeline<any, infer R> ? R : never
