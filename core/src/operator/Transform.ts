import { Effect } from "effect"
import { StageError } from "../errors.ts"
import { failAt } from "./failure.ts"
import { type Operator, sync } from "./Operator.ts"

/** One stateless stage of a fused chain. */
export interface TransformStage {
  readonly kind: "map" | "filter" | "flatMap" | "peek"
  readonly name: string
  readonly fn: (a: any) => any
}

/** A stage of a chain as planned: `mapUsingService` binds its service when the instance starts. */
export type PlannedTransform = TransformStage | {
  readonly kind: "map"
  readonly name: string
  readonly acquire: Effect.Effect<any, any, any>
  readonly fnWithService: (service: any, a: any) => any
}

/** Acquires the services of a chain (in the instance's scope) and fuses it. */
export const makeTransform = (stages: ReadonlyArray<PlannedTransform>, timed: boolean) =>
  Effect.map(
    Effect.forEach(stages, (s): Effect.Effect<TransformStage, unknown, any> =>
      "acquire" in s
        ? Effect.map(
          Effect.catch(s.acquire, failAt(s.name, undefined)),
          (service) => ({ kind: "map", name: s.name, fn: (a: unknown) => s.fnWithService(service, a) })
        )
        : Effect.succeed(s)),
    (bound) => sync(new Transform(bound, timed))
  )

/**
 * Generates one loop for the whole chain, e.g. for map → filter:
 *
 *   for (...) { v0 = batch[i]; st = 0; v1 = f0(v0); st = 1; if (!f1(v1)) continue; out.push(v1) }
 *
 * A fresh function per chain instance gets its own type feedback, so V8 inlines
 * the user functions at monomorphic call sites — several times faster than a
 * chain of closures. Only the fixed templates below become code; user functions
 * are passed in as arguments, never as text. `st` tracks the running stage so
 * a throw names it and the record it was given.
 */
const compile = (stages: ReadonlyArray<TransformStage>, timed: boolean) => {
  const n = stages.length
  const vars = Array.from({ length: n + 1 }, (_, k) => `v${k}`)
  // Timed records ({ t, v }) keep the event time of the record they came from.
  let body = timed ? `out.push({ t: t, v: v${n} });` : `out.push(v${n});`
  for (let k = n - 1; k >= 0; k--) {
    const call = `f${k}(v${k})`
    switch (stages[k]!.kind) {
      case "map":
        body = `st = ${k}; v${k + 1} = ${call}; ${body}`
        break
      case "filter":
        body = `st = ${k}; if (!${call}) continue; v${k + 1} = v${k}; ${body}`
        break
      case "peek":
        body = `st = ${k}; ${call}; v${k + 1} = v${k}; ${body}`
        break
      case "flatMap":
        body = `st = ${k}; for (const x${k} of ${call}) { v${k + 1} = x${k}; ${body} st = ${k}; }`
        break
    }
  }
  const source = `return function process(batch, out) {
    let st = 0, t = 0, ${vars.join(", ")};
    try {
      for (let i = 0; i < batch.length; i++) { ${timed ? "t = batch[i].t; v0 = batch[i].v;" : "v0 = batch[i];"} ${body} }
    } catch (e) { throw fail(st, [${vars.join(", ")}][st], e) }
  }`
  const params = [...stages.map((_, k) => `f${k}`), "fail"]
  const fail = (st: number, record: unknown, cause: unknown) =>
    cause instanceof StageError ? cause : new StageError({ stage: stages[st]!.name, record, cause })
  return new Function(...params, source)(...stages.map((s) => s.fn), fail) as (
    batch: ReadonlyArray<unknown>,
    out: Array<unknown>
  ) => void
}

/**
 * Adjacent stateless stages fused into one loop per batch, as Flink chains
 * operators: every record goes through the chain straight into the output
 * array, with no intermediate array per stage.
 */
export class Transform implements Operator<unknown, unknown> {
  private readonly run: (batch: ReadonlyArray<unknown>, out: Array<unknown>) => void

  constructor(stages: ReadonlyArray<TransformStage>, timed: boolean) {
    this.run = compile(stages, timed)
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>, out: Array<unknown>): void {
    this.run(batch, out)
  }
}
