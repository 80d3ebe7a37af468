/**
 * The contract of an aggregate operation. Every operation is split into
 * create / accumulate / combine / (deduct) / export so the engine can run it in
 * two stages: accumulate locally on each instance, ship the accumulators over
 * the partitioned edge, combine them per key, export once at the end.
 *
 * Accumulators may be mutable objects or immutable values: `accumulate`,
 * `combine` and `deduct` return the accumulator to keep (the same object when
 * mutated in place). The engine never shares an accumulator between keys.
 * Accumulators must be plain data (numbers, strings, arrays, plain objects,
 * Maps, Sets) because later snapshots serialise them.
 */
export interface AggregateOp<in I, A, out R> {
  readonly name: string
  readonly create: () => A
  readonly accumulate: (acc: A, item: I) => A
  readonly combine: (left: A, right: A) => A
  /** Inverse of `combine`, when the operation supports it (sliding windows use it). */
  readonly deduct?: ((acc: A, removed: A) => A) | undefined
  /** Must not mutate `acc`: early window results export a live accumulator. */
  readonly export: (acc: A) => R
}

/** The result type of an aggregate operation. */
export type ResultOf<Op> = Op extends AggregateOp<any, any, infer R> ? R : never
/** The input type of an aggregate operation. */
export type InputOf<Op> = Op extends AggregateOp<infer I, any, any> ? I : never
