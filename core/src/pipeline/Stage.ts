/**
 * Stage combinators. Each takes a `Stage<A, K, E, R, T>` and returns the next stage,
 * data-last for `pipe` and data-first for direct calls. A composition whose
 * types do not fit (a record type, a missing key, a sink of another type) is a
 * compile error.
 */
import { Duration, type Effect, type Schema, type Scope } from "effect"
import { dual } from "effect/Function"
import type { AggregateOp } from "../aggregate/AggregateOp.ts"
import { PlanError } from "../errors.ts"
import { decoder } from "../operator/Rejecting.ts"
import type { WindowDefinition, WindowResult } from "../window/Window.ts"
import type { DeadLetter } from "./DeadLetter.ts"
import type { Node } from "./Node.ts"
import type { Sink } from "./Sink.ts"
import { type AnyStage, isStage, makePipeline, makeStage, type Pipeline, type Stage, type Timed, type Unkeyed, type Untimed, type Windowed } from "./StageValue.ts"

export type { Stage, Timed, Unkeyed, Untimed, Windowed } from "./StageValue.ts"
export type { WindowResult } from "../window/Window.ts"
export type { DeadLetter } from "./DeadLetter.ts"
export { isStage } from "./StageValue.ts"

/** A result of a keyed aggregation. */
export interface KeyedResult<out K, out V> {
  readonly key: K
  readonly value: V
}

/**
 * What an aggregation emits: the bare value without a key, a `KeyedResult`
 * with one, a `WindowResult` per window after `Stage.window`.
 */
/** An aggregation per window emits at the window's end, in event time; any other, outside it. */
export type AggregatedTime<K> = [K] extends [Windowed<any>] ? Timed : Untimed

export type Aggregated<K, V> = [K] extends [Windowed<infer G>] ? WindowResult<[G] extends [Unkeyed] ? undefined : G, V>
  : [K] extends [Unkeyed] ? V
  : KeyedResult<K, V>

const next = <B, K = Unkeyed, E = never, R = never, T = Untimed>(
  node: Node,
  key?: (a: any) => unknown,
  window?: AnyStage["window"]
): Stage<B, K, E, R, T> => makeStage(node, key, window)

export interface DeadLetterOptions {
  /**
   * Where rejected records go, as `DeadLetter`s (counted in the job metrics),
   * instead of failing the job. A sink several stages share is one sink.
   */
  readonly deadLetters?: Sink<DeadLetter, any> | undefined
}

/**
 * Applies `f` to every record. With `deadLetters`, a record `f` throws on (a
 * poison record) goes there and the job goes on.
 */
export const map: {
  <A, B>(f: (a: A) => B, options?: DeadLetterOptions): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<B, Unkeyed, E, R, T>
  <A, E, R, T, B>(self: Stage<A, Unkeyed, E, R, T>, f: (a: A) => B, options?: DeadLetterOptions): Stage<B, Unkeyed, E, R, T>
} = dual(
  (args) => isStage(args[0]),
  (self: AnyStage, fn: (a: any) => any, options?: DeadLetterOptions) =>
    next({ kind: "map", input: self.node, fn, deadLetters: options?.deadLetters })
)

/**
 * Decodes every record with `schema` (synchronously, a batch at a time): the
 * records downstream have the schema's type. A record that does not decode
 * goes to `deadLetters`; without one it fails the job with a `StageError`
 * whose cause is the `SchemaError`. Right after `Pipeline.from`, both name
 * the record's position in the source (and its split).
 */
export const decode: {
  <S extends Schema.ConstraintDecoder<unknown>>(
    schema: S,
    options?: DeadLetterOptions
  ): <A, E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<S["Type"], Unkeyed, E, R, T>
  <A, E, R, T, S extends Schema.ConstraintDecoder<unknown>>(
    self: Stage<A, Unkeyed, E, R, T>,
    schema: S,
    options?: DeadLetterOptions
  ): Stage<S["Type"], Unkeyed, E, R, T>
} = dual(
  (args) => isStage(args[0]),
  (self: AnyStage, schema: Schema.ConstraintDecoder<unknown>, options?: DeadLetterOptions) =>
    next({ kind: "decode", input: self.node, fn: decoder(schema), deadLetters: options?.deadLetters })
)

/** Keeps the records `predicate` accepts. */
export const filter: {
  <A, B extends A>(refinement: (a: A) => a is B): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<B, Unkeyed, E, R, T>
  <A>(predicate: (a: A) => boolean): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<A, Unkeyed, E, R, T>
  <A, E, R, T, B extends A>(self: Stage<A, Unkeyed, E, R, T>, refinement: (a: A) => a is B): Stage<B, Unkeyed, E, R, T>
  <A, E, R, T>(self: Stage<A, Unkeyed, E, R, T>, predicate: (a: A) => boolean): Stage<A, Unkeyed, E, R, T>
} = dual(2, (self: AnyStage, fn: (a: any) => boolean) => next({ kind: "filter", input: self.node, fn }))

/** Replaces every record by the records `f` returns (zero or more). */
export const flatMap: {
  <A, B>(f: (a: A) => Iterable<B>): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<B, Unkeyed, E, R, T>
  <A, E, R, T, B>(self: Stage<A, Unkeyed, E, R, T>, f: (a: A) => Iterable<B>): Stage<B, Unkeyed, E, R, T>
} = dual(2, (self: AnyStage, fn: (a: any) => any) => next({ kind: "flatMap", input: self.node, fn }))

/** Calls `f` on every record passing by (for logging and debugging), unchanged. */
export const peek: {
  <A>(f: (a: A) => void): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<A, Unkeyed, E, R, T>
  <A, E, R, T>(self: Stage<A, Unkeyed, E, R, T>, f: (a: A) => void): Stage<A, Unkeyed, E, R, T>
} = dual(2, (self: AnyStage, fn: (a: any) => void) => next({ kind: "peek", input: self.node, fn }))

export interface MapEffectOptions {
  /** In-flight effects per instance (default 4). */
  readonly concurrency?: number | undefined
  /** Keep input order (default true); unordered emits in completion order. */
  readonly ordered?: boolean | undefined
}

/** Runs an effect per record (an async lookup, a call to a service) with a bound on in-flight work. */
export const mapEffect: {
  <A, B, E2, R2>(
    f: (a: A) => Effect.Effect<B, E2, R2>,
    options?: MapEffectOptions
  ): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<B, Unkeyed, E | E2, R | R2>
  <A, E, R, T, B, E2, R2>(
    self: Stage<A, Unkeyed, E, R, T>,
    f: (a: A) => Effect.Effect<B, E2, R2>,
    options?: MapEffectOptions
  ): Stage<B, Unkeyed, E | E2, R | R2>
} = dual(
  (args) => isStage(args[0]),
  (self: AnyStage, fn: (a: any) => Effect.Effect<any, any, any>, options?: MapEffectOptions) =>
    next({
      kind: "mapEffect",
      input: self.node,
      fn,
      concurrency: options?.concurrency ?? 4,
      ordered: options?.ordered ?? true
    })
)

/**
 * Maps a batch at a time with a service created once per instance by the
 * scoped effect `acquire` (a connection pool), released when the job ends:
 * `f` answers every record of the batch, in order, with one effect (a lookup
 * asking a database once for the keys of the batch; Jet's
 * `mapUsingServiceAsyncBatched`). As after `mapEffect`, the records have no
 * event time any more.
 */
export const mapBatchedUsingService: {
  <S, E2, R2, A, B, E3, R3>(
    acquire: Effect.Effect<S, E2, R2>,
    f: (service: S, batch: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<B>, E3, R3>
  ): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<B, Unkeyed, E | E2 | E3, R | Exclude<R2, Scope.Scope> | R3>
  <A, E, R, T, S, E2, R2, B, E3, R3>(
    self: Stage<A, Unkeyed, E, R, T>,
    acquire: Effect.Effect<S, E2, R2>,
    f: (service: S, batch: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<B>, E3, R3>
  ): Stage<B, Unkeyed, E | E2 | E3, R | Exclude<R2, Scope.Scope> | R3>
} = dual(
  3,
  (self: AnyStage, acquire: Effect.Effect<any, any, any>, fn: (s: any, batch: ReadonlyArray<any>) => Effect.Effect<ReadonlyArray<any>, any, any>) =>
    next({ kind: "mapBatched", input: self.node, acquire, fn })
)

/**
 * Maps with a service created once per instance by the scoped effect `acquire`
 * (a client, a model, a cache) and released when the job ends.
 */
export const mapUsingService: {
  <S, E2, R2, A, B>(
    acquire: Effect.Effect<S, E2, R2>,
    f: (service: S, a: A) => B
  ): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<B, Unkeyed, E | E2, R | Exclude<R2, Scope.Scope>, T>
  <A, E, R, T, S, E2, R2, B>(
    self: Stage<A, Unkeyed, E, R, T>,
    acquire: Effect.Effect<S, E2, R2>,
    f: (service: S, a: A) => B
  ): Stage<B, Unkeyed, E | E2, R | Exclude<R2, Scope.Scope>, T>
} = dual(
  3,
  (self: AnyStage, acquire: Effect.Effect<any, any, any>, fn: (s: any, a: any) => any) =>
    next({ kind: "mapUsingService", input: self.node, acquire, fn })
)

export interface TimestampOptions {
  /** How far behind the highest event time seen an event may arrive and still count. */
  readonly allowedLag: Duration.Input
  /**
   * After this long without data (processing time) an input stops holding back
   * the watermark, until it has data again (default 60 seconds).
   */
  readonly idleTimeout?: Duration.Input | undefined
}

const timestamps = (self: AnyStage, time: ((a: any) => number) | "native", options: TimestampOptions): AnyStage =>
  next({
    kind: "timestamps",
    input: self.node,
    time,
    allowedLag: Duration.toMillis(options.allowedLag),
    idleTimeout: Duration.toMillis(options.idleTimeout ?? "60 seconds")
  })

/**
 * Gives records an event time (milliseconds) and starts watermarks: each
 * instance's watermark is its highest time seen minus `allowedLag`; an
 * operator's watermark is the minimum over its inputs.
 */
export const withTimestamps: {
  <A>(time: (a: A) => number, options: TimestampOptions): <E, R>(self: Stage<A, Unkeyed, E, R>) => Stage<A, Unkeyed, E, R, Timed>
  <A, E, R>(self: Stage<A, Unkeyed, E, R>, time: (a: A) => number, options: TimestampOptions): Stage<A, Unkeyed, E, R, Timed>
} = dual(3, (self: AnyStage, time: (a: any) => number, options: TimestampOptions) => timestamps(self, time, options))

/** Event time = the time a record enters the pipeline (processing time at this stage). */
export const withIngestionTimestamps = <A, E, R>(self: Stage<A, Unkeyed, E, R>): Stage<A, Unkeyed, E, R, Timed> =>
  timestamps(self, () => Date.now(), { allowedLag: 0 })

/** Event time = the time the source's records carry (`Source.eventTime`); directly after `Pipeline.from`. */
export const withNativeTimestamps: {
  (options: TimestampOptions): <A, E, R>(self: Stage<A, Unkeyed, E, R>) => Stage<A, Unkeyed, E, R, Timed>
  <A, E, R>(self: Stage<A, Unkeyed, E, R>, options: TimestampOptions): Stage<A, Unkeyed, E, R, Timed>
} = dual(2, (self: AnyStage, options: TimestampOptions) => timestamps(self, "native", options))

export interface WindowOptions<A> {
  /** Where events that arrive behind the watermark go (default: dropped and counted in the job metrics). */
  readonly lateEvents?: Sink<A, any> | undefined
}

/**
 * Windows the next `aggregate` by event time (after `withTimestamps`): one
 * `WindowResult` per window (and key, after `groupingKey`). Before any other
 * stage the planner refuses it.
 */
export const window: {
  <A>(definition: WindowDefinition, options?: WindowOptions<A>): <K, E, R>(self: Stage<A, K, E, R, Timed>) => Stage<A, Windowed<K>, E, R, Timed>
  <A, K, E, R>(self: Stage<A, K, E, R, Timed>, definition: WindowDefinition, options?: WindowOptions<A>): Stage<A, Windowed<K>, E, R, Timed>
} = dual(
  (args) => isStage(args[0]),
  (self: AnyStage, definition: WindowDefinition, options?: WindowOptions<any>) =>
    next(self.node, self.key, { definition, lateSink: options?.lateEvents })
)

/** Sets the grouping key for the next keyed stage (aggregate, rollingAggregate, mapStateful, distinct). */
export const groupingKey: {
  <A, K>(key: (a: A) => K): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<A, K, E, R, T>
  <A, E, R, T, K>(self: Stage<A, Unkeyed, E, R, T>, key: (a: A) => K): Stage<A, K, E, R, T>
} = dual(2, (self: AnyStage, key: (a: any) => unknown) => next(self.node, key))

/**
 * Aggregates all records (bounded input; over an unbounded one the planner asks
 * for a window): one result, or one `KeyedResult` per key after `groupingKey`.
 * Runs in two stages: accumulate locally, combine per key.
 */
export const aggregate: {
  <A, Acc, O>(op: AggregateOp<A, Acc, O>): <K, E, R, T>(self: Stage<A, K, E, R, T>) => Stage<Aggregated<K, O>, Unkeyed, E, R, AggregatedTime<K>>
  <A, K, E, R, T, Acc, O>(self: Stage<A, K, E, R, T>, op: AggregateOp<A, Acc, O>): Stage<Aggregated<K, O>, Unkeyed, E, R, AggregatedTime<K>>
} = dual(
  2,
  (self: AnyStage, op: AggregateOp<any, any, any>) =>
    next({
      kind: "aggregate",
      input: self.node,
      key: self.key,
      op,
      window: self.window?.definition,
      lateSink: self.window?.lateSink
    })
)

/** Options of `rollingAggregate`. */
export interface RollingAggregateOptions {
  /** A key idle this long in event time (needs timestamps) is forgotten: its next record starts over. */
  readonly ttl?: Duration.Input | undefined
}

/** Emits the running aggregate (per key after `groupingKey`) after every record. */
export const rollingAggregate: {
  <A, Acc, O>(op: AggregateOp<A, Acc, O>, options?: RollingAggregateOptions): <K, E, R, T>(self: Stage<A, K, E, R, T>) => Stage<Aggregated<K, O>, Unkeyed, E, R, T>
  <A, K, E, R, T, Acc, O>(self: Stage<A, K, E, R, T>, op: AggregateOp<A, Acc, O>, options?: RollingAggregateOptions): Stage<Aggregated<K, O>, Unkeyed, E, R, T>
} = dual(
  (args) => isStage(args[0]),
  (self: AnyStage, op: AggregateOp<any, any, any>, options?: RollingAggregateOptions) =>
    next({
      kind: "rollingAggregate",
      input: self.node,
      key: self.key,
      window: self.window?.definition,
      op,
      ttl: options?.ttl === undefined ? undefined : Duration.toMillis(options.ttl)
    })
)

/** When a key's state is evicted (in event time: needs timestamps), and what eviction emits. */
export type MapStatefulOptions<S, K, B> =
  & (
    /** Once the watermark passes the key's last event time + `ttl`. */
    | { readonly ttl: Duration.Input; readonly expireAt?: undefined }
    /** Once the watermark reaches the time the state itself names (an auction's close, a deadline). */
    | { readonly expireAt: (state: S, key: K) => number; readonly ttl?: undefined }
  )
  & {
    /** Called with the evicted state; its result (if any) is emitted, timed at the watermark. */
    readonly onEvict?: ((state: S, key: K, time: number) => B | undefined) | undefined
  }

/**
 * Maps with state kept per key (one state for an unkeyed stage). `create` makes
 * the state of a new key; `f` may mutate it and returns the output record, or
 * `undefined` for none. State must be plain data so it can be snapshotted.
 */
export const mapStateful: {
  <S, A, K, B>(
    create: () => S,
    f: (state: S, item: A, key: K) => B | undefined,
    options?: MapStatefulOptions<S, K, B>
  ): <E, R, T>(self: Stage<A, K, E, R, T>) => Stage<B, Unkeyed, E, R, T>
  <A, K, E, R, T, S, B>(
    self: Stage<A, K, E, R, T>,
    create: () => S,
    f: (state: S, item: A, key: K) => B | undefined,
    options?: MapStatefulOptions<S, K, B>
  ): Stage<B, Unkeyed, E, R, T>
} = dual(
  (args) => isStage(args[0]),
  (self: AnyStage, create: () => unknown, fn: (s: any, a: any, k: any) => unknown, options?: MapStatefulOptions<any, any, any>) =>
    next({
      kind: "mapStateful",
      input: self.node,
      key: self.key,
      window: self.window?.definition,
      create,
      fn,
      ttl: options?.ttl === undefined ? undefined : Duration.toMillis(options.ttl),
      expireAt: options?.expireAt,
      onEvict: options?.onEvict
    })
)

/** Emits each distinct record once (or the first record of each key after `groupingKey`). */
export const distinct = <A, K, E, R, T>(self: Stage<A, K, E, R, T>): Stage<A, Unkeyed, E, R> =>
  next({ kind: "distinct", input: self.node, key: self.key ?? ((a: unknown) => a), window: self.window?.definition })

/** How records of the main input meet records of a side input. */
export interface JoinOn<A, B, J> {
  readonly left: (a: A) => J
  readonly right: (b: B) => J
}

/**
 * Joins every record with the records of the bounded `side` stage that have the
 * same join key (left outer: `f(a, undefined)` when none matches). The side
 * input is loaded into memory on every instance before the main input flows.
 */
export const hashJoin: {
  <A, B, J, C, E2, R2>(
    side: Stage<B, Unkeyed, E2, R2, unknown>,
    on: JoinOn<A, B, J>,
    f: (a: A, b: B | undefined) => C
  ): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<C, Unkeyed, E | E2, R | R2>
  <A, E, R, T, B, J, C, E2, R2>(
    self: Stage<A, Unkeyed, E, R, T>,
    side: Stage<B, Unkeyed, E2, R2, unknown>,
    on: JoinOn<A, B, J>,
    f: (a: A, b: B | undefined) => C
  ): Stage<C, Unkeyed, E | E2, R | R2>
} = dual(4, (self: AnyStage, side: AnyStage, on: JoinOn<any, any, any>, fn: any) =>
  next({ kind: "hashJoin", input: self.node, side: side.node, leftKey: on.left, rightKey: on.right, fn, inner: false }))

/** Like `hashJoin`, but a record without a matching side record is dropped. */
export const innerHashJoin: {
  <A, B, J, C, E2, R2>(
    side: Stage<B, Unkeyed, E2, R2, unknown>,
    on: JoinOn<A, B, J>,
    f: (a: A, b: B) => C
  ): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<C, Unkeyed, E | E2, R | R2>
  <A, E, R, T, B, J, C, E2, R2>(
    self: Stage<A, Unkeyed, E, R, T>,
    side: Stage<B, Unkeyed, E2, R2, unknown>,
    on: JoinOn<A, B, J>,
    f: (a: A, b: B) => C
  ): Stage<C, Unkeyed, E | E2, R | R2>
} = dual(4, (self: AnyStage, side: AnyStage, on: JoinOn<any, any, any>, fn: any) =>
  next({ kind: "hashJoin", input: self.node, side: side.node, leftKey: on.left, rightKey: on.right, fn, inner: true }))

/** One input of `cogroup`: a keyed stage and the aggregate op to run on it. */
export interface CoGroupInput<out K, out O, out E, out R> {
  readonly stage: Stage<unknown, K, E, R, unknown>
  readonly op: AggregateOp<any, any, O>
}

/** Pairs a keyed stage with the aggregate op that `cogroup` runs on it. */
export const input = <A, K, E, R, T, Acc, O>(stage: Stage<A, K, E, R, T>, op: AggregateOp<A, Acc, O>): CoGroupInput<K, O, E, R> => ({
  stage,
  op
})

type AnyInput = CoGroupInput<any, any, any, any>
type CoKey<T> = T[keyof T] extends CoGroupInput<infer K, any, any, any> ? K : never
type CoErr<T> = T[keyof T] extends CoGroupInput<any, any, infer E, any> ? E : never
type CoReq<T> = T[keyof T] extends CoGroupInput<any, any, any, infer R> ? R : never

/**
 * Co-groups several keyed inputs by key and aggregates each with its own op:
 * one `KeyedResult` per key whose value holds every input's result under its
 * name, e.g. `cogroup({ bids: input(bids, counting()), asks: input(asks, counting()) })`.
 */
export const cogroup = <const T extends Record<string, AnyInput>>(
  inputs: T
): Stage<
  KeyedResult<CoKey<T>, { readonly [N in keyof T]: T[N] extends CoGroupInput<any, infer O, any, any> ? O : never }>,
  Unkeyed,
  CoErr<T>,
  CoReq<T>
> => {
  const labels = Object.keys(inputs)
  return next({ kind: "cogroup", labels, inputs: labels.map((l) => coInput(inputs[l]!)) })
}

const coInput = (i: AnyInput) => {
  if (i.stage.key === undefined) throw new PlanError({ reason: "cogroup: every input needs Stage.groupingKey" })
  if (i.stage.window !== undefined) throw new PlanError({ reason: "cogroup: an input does not take a window; Stage.window applies to the Stage.aggregate after it" })
  return { node: i.stage.node, key: i.stage.key as (a: any) => any, op: i.op }
}

/** Aggregates this keyed stage and `other` (same key type) together: value `[thisResult, otherResult]`. */
export const aggregate2: {
  <A, Acc, O, B, K, E2, R2, Acc2, O2>(
    op: AggregateOp<A, Acc, O>,
    other: Stage<B, K, E2, R2, unknown>,
    otherOp: AggregateOp<B, Acc2, O2>
  ): <E, R, T>(self: Stage<A, K, E, R, T>) => Stage<KeyedResult<K, readonly [O, O2]>, Unkeyed, E | E2, R | R2>
  <A, K, E, R, T, Acc, O, B, E2, R2, Acc2, O2>(
    self: Stage<A, K, E, R, T>,
    op: AggregateOp<A, Acc, O>,
    other: Stage<B, K, E2, R2, unknown>,
    otherOp: AggregateOp<B, Acc2, O2>
  ): Stage<KeyedResult<K, readonly [O, O2]>, Unkeyed, E | E2, R | R2>
} = dual(4, (self: AnyStage, op: AggregateOp<any, any, any>, other: AnyStage, otherOp: any) =>
  next({ kind: "cogroup", labels: undefined, inputs: [coInput({ stage: self, op }), coInput({ stage: other, op: otherOp })] }))

/** The records of both stages, interleaved. */
export const merge: {
  <B, E2, R2, T2>(other: Stage<B, Unkeyed, E2, R2, T2>): <A, E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<A | B, Unkeyed, E | E2, R | R2, T | T2>
  <A, E, R, T, B, E2, R2, T2>(self: Stage<A, Unkeyed, E, R, T>, other: Stage<B, Unkeyed, E2, R2, T2>): Stage<A | B, Unkeyed, E | E2, R | R2, T | T2>
} = dual(2, (self: AnyStage, other: AnyStage) =>
  next({ kind: "merge", inputs: [self.node, other.node] }))

/**
 * Redistributes records over all instances of the next stage: by key after
 * `groupingKey`, round-robin otherwise (to spread a source that cannot be split).
 */
export const rebalance = <A, K, E, R, T>(self: Stage<A, K, E, R, T>): Stage<A, Unkeyed, E, R, T> =>
  next({ kind: "rebalance", input: self.node, key: self.key, window: self.window?.definition })

/** Sorts a bounded input (the whole input, on one instance at the end). */
export const sort: {
  <A>(compare: (a: A, b: A) => number): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Stage<A, Unkeyed, E, R>
  <A, E, R, T>(self: Stage<A, Unkeyed, E, R, T>, compare: (a: A, b: A) => number): Stage<A, Unkeyed, E, R>
} = dual(2, (self: AnyStage, compare: (a: any, b: any) => number) =>
  next({ kind: "sort", input: self.node, compare }))

/** Names the stage: used in errors, metrics and (later) to match state on upgrade. */
export const withName: {
  (name: string): <S extends AnyStage>(self: S) => S
  <S extends AnyStage>(self: S, name: string): S
} = dual(2, (self: AnyStage, name: string) => next({ ...self.node, name }, self.key, self.window))

/** Ends the stage in `sink`, making a pipeline. */
export const writeTo: {
  <A, R2>(sink: Sink<A, R2>): <E, R, T>(self: Stage<A, Unkeyed, E, R, T>) => Pipeline<E, R | R2>
  <A, E, R, T, R2>(self: Stage<A, Unkeyed, E, R, T>, sink: Sink<A, R2>): Pipeline<E, R | R2>
} = dual(2, (self: AnyStage, sink: Sink<any, any>) =>
  makePipeline([{ kind: "sink", input: self.node, sink }]))
