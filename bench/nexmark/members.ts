/**
 * The NEXMark queries as pipelines for the member processes of a local
 * cluster (`LocalCluster.run` imports this module in each member): NEXMARK_COUNT
 * generated events, split over all instances, into a sink that discards.
 */
import { Effect } from "effect"
import { Pipeline, Sink, Stage } from "../../core/src/index.ts"
import { source } from "./generator.ts"
import * as Q from "./queries.ts"

const discard = Sink.make<unknown>({ name: "discard", open: () => Effect.succeed({ write: () => Effect.void }) })
const query = (q: (events: Stage.Stage<any>) => Stage.Stage<any, Stage.Unkeyed, never, never, unknown>) =>
  q(Pipeline.from(source({ count: Number(process.env.NEXMARK_COUNT ?? 1_000_000) }))).pipe(Stage.writeTo(discard))

export const Q0 = query(Q.q0)
export const Q1 = query(Q.q1)
export const Q2 = query(Q.q2)
export const Q3 = query(Q.q3)
export const Q4 = query(Q.q4)
export const Q5 = query(Q.q5)
export const Q7 = query(Q.q7)
export const Q8 = query(Q.q8)
export const Q11 = query(Q.q11)
export const Q12 = query(Q.q12)
