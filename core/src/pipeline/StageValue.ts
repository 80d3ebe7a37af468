import { type Pipeable, pipeArguments } from "effect/Pipeable"
import type { WindowDefinition } from "../window/Window.ts"
import type { Node } from "./Node.ts"
import type { Sink } from "./Sink.ts"

export const StageTypeId: unique symbol = Symbol.for("tributary/Stage")
export const PipelineTypeId: unique symbol = Symbol.for("tributary/Pipeline")

declare const Brand: unique symbol

// Brands are interfaces, not `unique symbol`s, so that compiler messages name them.
/** The key type of a stage that has no grouping key. */
export interface Unkeyed {
  readonly [Brand]: "Unkeyed"
}

/** The time of a stage whose records have event times (downstream of `withTimestamps`). */
export interface Timed {
  readonly [Brand]: "Timed"
}

/** The time of a stage whose records have no event time. */
export interface Untimed {
  readonly [Brand]: "Untimed"
}

/**
 * A stage of a pipeline emitting records of type `A`. `K` is the grouping key
 * set by `Stage.groupingKey` (`Unkeyed` otherwise), `E` the errors its
 * effects fail with, `R` the services its sources, sinks and resources need
 * and `T` whether its records have event times. All are covariant, so a stage
 * composes wherever its types fit, and nowhere else.
 */
export interface Stage<out A, out K = Unkeyed, out E = never, out R = never, out T = Untimed> extends Pipeable {
  readonly [StageTypeId]: {
    readonly _A: (_: never) => A
    readonly _K: (_: never) => K
    readonly _E: (_: never) => E
    readonly _R: (_: never) => R
    readonly _T: (_: never) => T
  }
  readonly node: Node
  /** The grouping key function, set on keyed stages only. */
  readonly key: ((a: any) => unknown) | undefined
  /** Set by `Stage.window` for the aggregation that follows. */
  readonly window: { readonly definition: WindowDefinition; readonly lateSink: Sink<any, any> | undefined } | undefined
}

/** The key type of a stage after `Stage.window` (the grouping key, or `Unkeyed`, inside). */
export interface Windowed<out K> {
  readonly _Windowed: K
}

/** A complete pipeline: one or more sinks and everything that feeds them; a job of it fails with `E` or a `JobError`. */
export interface Pipeline<out E = never, out R = never> extends Pipeable {
  readonly [PipelineTypeId]: { readonly _E: (_: never) => E; readonly _R: (_: never) => R }
  readonly sinks: ReadonlyArray<Node>
}

const variance = { _A: (_: never) => _, _K: (_: never) => _, _E: (_: never) => _, _R: (_: never) => _, _T: (_: never) => _ }

const StageProto = {
  [StageTypeId]: variance,
  pipe() {
    return pipeArguments(this, arguments)
  }
}

const PipelineProto = {
  [PipelineTypeId]: variance,
  pipe() {
    return pipeArguments(this, arguments)
  }
}

export const makeStage = <A, K = Unkeyed, E = never, R = never, T = Untimed>(
  node: Node,
  key?: (a: any) => unknown,
  window?: AnyStage["window"]
): Stage<A, K, E, R, T> => Object.assign(Object.create(StageProto), { node, key, window })

export const makePipeline = <E, R>(sinks: ReadonlyArray<Node>): Pipeline<E, R> =>
  Object.assign(Object.create(PipelineProto), { sinks })

export type AnyStage = Stage<any, any, any, any, any>

export const isStage = (u: unknown): u is Stage<unknown, unknown, unknown, unknown, unknown> =>
  typeof u === "object" && u !== null && StageTypeId in u

export const isPipeline = (u: unknown): u is Pipeline<unknown, unknown> =>
  typeof u === "object" && u !== null && PipelineTypeId in u
