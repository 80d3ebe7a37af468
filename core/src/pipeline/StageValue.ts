import { type Pipeable, pipeArguments } from "effect/Pipeable"
import type { WindowDefinition } from "../window/Window.ts"
import type { Node } from "./Node.ts"
import type { Sink } from "./Sink.ts"

export const StageTypeId: unique symbol = Symbol.for("tributary/Stage")
export const PipelineTypeId: unique symbol = Symbol.for("tributary/Pipeline")

/** The key type of a stage that has no grouping key. */
export declare const Unkeyed: unique symbol
export type Unkeyed = typeof Unkeyed

/**
 * A stage of a pipeline emitting records of type `A`. `K` is the grouping key
 * set by `Stage.groupingKey` (`Unkeyed` otherwise) and `R` the services the
 * stage's sources, sinks and resources need. All three are covariant, so a
 * stage composes wherever its types fit, and nowhere else.
 */
export interface Stage<out A, out K = Unkeyed, out R = never> extends Pipeable {
  readonly [StageTypeId]: { readonly _A: (_: never) => A; readonly _K: (_: never) => K; readonly _R: (_: never) => R }
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

/** A complete pipeline: one or more sinks and everything that feeds them. */
export interface Pipeline<out R = never> extends Pipeable {
  readonly [PipelineTypeId]: { readonly _R: (_: never) => R }
  readonly sinks: ReadonlyArray<Node>
}

const variance = { _A: (_: never) => _, _K: (_: never) => _, _R: (_: never) => _ }

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

export const makeStage = <A, K = Unkeyed, R = never>(
  node: Node,
  key?: (a: any) => unknown,
  window?: Stage<any, any, any>["window"]
): Stage<A, K, R> => Object.assign(Object.create(StageProto), { node, key, window })

export const makePipeline = <R>(sinks: ReadonlyArray<Node>): Pipeline<R> =>
  Object.assign(Object.create(PipelineProto), { sinks })

export const isStage = (u: unknown): u is Stage<unknown, unknown, unknown> =>
  typeof u === "object" && u !== null && StageTypeId in u

export const isPipeline = (u: unknown): u is Pipeline<unknown> =>
  typeof u === "object" && u !== null && PipelineTypeId in u
