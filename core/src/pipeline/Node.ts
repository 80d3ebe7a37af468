import type { Effect } from "effect"
import type { AggregateOp } from "../aggregate/AggregateOp.ts"
import type { WindowDefinition } from "../window/Window.ts"
import type { DeadLetter } from "./DeadLetter.ts"
import type { Sink } from "./Sink.ts"
import type { Source } from "./Source.ts"

/**
 * The logical graph a pipeline builds: one node per stage, pointing at its
 * inputs. Nodes are immutable; the planner turns them into a DAG of vertices.
 */
export type Fn = (a: any) => any

interface Base {
  /** Set by the user with `Stage.withName`; otherwise the planner names it. */
  readonly name?: string | undefined
  /** Set by `Stage.window` before the stage: only an aggregate takes one, the planner refuses it elsewhere. */
  readonly window?: WindowDefinition | undefined
}

export type Node =
  | Base & { readonly kind: "source"; readonly source: Source<any, any> }
  | Base & { readonly kind: "filter" | "flatMap" | "peek"; readonly input: Node; readonly fn: Fn }
  | Base & {
    /** A decode's `fn` throws a `SchemaError` for a record that does not decode. */
    readonly kind: "map" | "decode"
    readonly input: Node
    readonly fn: Fn
    /** Where records `fn` throws on go; a decode without one fails the job, naming split and position. */
    readonly deadLetters?: Sink<DeadLetter, any> | undefined
  }
  | Base & {
    readonly kind: "mapEffect"
    readonly input: Node
    readonly fn: (a: any) => Effect.Effect<any, any, any>
    readonly concurrency: number
    readonly ordered: boolean
  }
  | Base & {
    readonly kind: "mapBatched"
    readonly input: Node
    readonly acquire: Effect.Effect<any, any, any>
    readonly fn: (service: any, batch: ReadonlyArray<any>) => Effect.Effect<ReadonlyArray<any>, any, any>
  }
  | Base & {
    readonly kind: "mapUsingService"
    readonly input: Node
    readonly acquire: Effect.Effect<any, any, any>
    readonly fn: (service: any, a: any) => any
  }
  | Base & {
    readonly kind: "timestamps"
    readonly input: Node
    /** Event time of a record; `"native"` takes the source's own. */
    readonly time: ((a: any) => number) | "native"
    readonly allowedLag: number
    readonly idleTimeout: number
  }
  | Base & {
    readonly kind: "aggregate"
    readonly input: Node
    readonly key: Fn | undefined
    readonly op: AnyOp
    readonly window: WindowDefinition | undefined
    readonly lateSink: Sink<any, any> | undefined
  }
  | Base & { readonly kind: "rollingAggregate"; readonly input: Node; readonly key: Fn | undefined; readonly op: AnyOp; readonly ttl: number | undefined }
  | Base & {
    readonly kind: "mapStateful"
    readonly input: Node
    readonly key: Fn | undefined
    readonly create: () => unknown
    readonly fn: (state: any, item: any, key: any) => unknown
    readonly ttl: number | undefined
    readonly expireAt: ((state: any, key: any) => number) | undefined
    readonly onEvict: ((state: any, key: any, time: number) => unknown) | undefined
  }
  | Base & { readonly kind: "distinct"; readonly input: Node; readonly key: Fn }
  | Base & {
    readonly kind: "hashJoin"
    readonly input: Node
    readonly side: Node
    readonly leftKey: Fn
    readonly rightKey: Fn
    readonly fn: (left: any, right: any) => any
    readonly inner: boolean
  }
  | Base & {
    readonly kind: "cogroup"
    readonly inputs: ReadonlyArray<{ readonly node: Node; readonly key: Fn; readonly op: AnyOp }>
    /** Field names of the result record; undefined for a tuple result. */
    readonly labels: ReadonlyArray<string> | undefined
  }
  | Base & { readonly kind: "merge"; readonly inputs: ReadonlyArray<Node> }
  | Base & { readonly kind: "rebalance"; readonly input: Node; readonly key: Fn | undefined }
  | Base & { readonly kind: "sort"; readonly input: Node; readonly compare: (a: any, b: any) => number }
  | Base & { readonly kind: "sink"; readonly input: Node; readonly sink: Sink<any, any> }

export type AnyOp = AggregateOp<any, any, any>

/** The nodes a node reads from, in input-ordinal order. */
export const inputsOf = (node: Node): ReadonlyArray<Node> => {
  switch (node.kind) {
    case "source":
      return []
    case "merge":
      return node.inputs
    case "cogroup":
      return node.inputs.map((i) => i.node)
    case "hashJoin":
      return [node.input, node.side]
    default:
      return [node.input]
  }
}
