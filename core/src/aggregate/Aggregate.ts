/**
 * Built-in aggregate operations. Each is create / accumulate / combine /
 * (deduct) / export, so the engine runs it in two stages; accumulators are
 * plain data (numbers, arrays, plain objects, Maps, Sets) so they can be
 * snapshotted. `accumulate` runs once per record: it mutates the accumulator
 * in place where it can instead of allocating.
 */
import type { AggregateOp } from "./AggregateOp.ts"

export type { AggregateOp, InputOf, ResultOf } from "./AggregateOp.ts"

/** A user-defined operation (the name defaults to "custom"). */
export const make = <I, A, R>(def: Omit<AggregateOp<I, A, R>, "name"> & { readonly name?: string }): AggregateOp<I, A, R> => ({
  ...def,
  name: def.name ?? "custom"
})

/** Number of records. */
export const counting = <I = unknown>(): AggregateOp<I, number, number> => ({
  name: "counting",
  create: () => 0,
  accumulate: (n) => n + 1,
  combine: (a, b) => a + b,
  deduct: (a, b) => a - b,
  export: (n) => n
})

/** Sum of `f` over the records. */
export const summing = <I>(f: (i: I) => number): AggregateOp<I, number, number> => ({
  name: "summing",
  create: () => 0,
  accumulate: (sum, i) => sum + f(i),
  combine: (a, b) => a + b,
  deduct: (a, b) => a - b,
  export: (sum) => sum
})

interface Mean {
  n: number
  sum: number
}

/** Arithmetic mean of `f` (NaN for no records). */
export const averaging = <I>(f: (i: I) => number): AggregateOp<I, Mean, number> => ({
  name: "averaging",
  create: () => ({ n: 0, sum: 0 }),
  accumulate: (acc, i) => {
    acc.n++
    acc.sum += f(i)
    return acc
  },
  combine: (a, b) => ({ n: a.n + b.n, sum: a.sum + b.sum }),
  deduct: (a, b) => ({ n: a.n - b.n, sum: a.sum - b.sum }),
  export: (acc) => (acc.n === 0 ? NaN : acc.sum / acc.n)
})

/** The greatest record by `compare` (the first seen among equals). */
export const maxBy = <I>(compare: (a: I, b: I) => number): AggregateOp<I, I | undefined, I | undefined> => ({
  name: "maxBy",
  create: () => undefined,
  accumulate: (best, i) => (best === undefined || compare(i, best) > 0 ? i : best),
  combine: (a, b) => (a === undefined ? b : b === undefined ? a : compare(b, a) > 0 ? b : a),
  export: (best) => best
})

/** The least record by `compare` (the first seen among equals). */
export const minBy = <I>(compare: (a: I, b: I) => number): AggregateOp<I, I | undefined, I | undefined> => ({
  ...maxBy((a: I, b: I) => compare(b, a)),
  name: "minBy"
})

/** Keeps `sorted` (best first by `better`) at most `n` long after inserting `item`. */
const insertBounded = <I>(sorted: Array<I>, item: I, n: number, better: (a: I, b: I) => number): Array<I> => {
  if (sorted.length === n && better(item, sorted[n - 1]!) <= 0) return sorted
  let at = sorted.length
  while (at > 0 && better(item, sorted[at - 1]!) > 0) at--
  sorted.splice(at, 0, item)
  if (sorted.length > n) sorted.length = n
  return sorted
}

const bestN = (name: string) => <I>(n: number, better: (a: I, b: I) => number): AggregateOp<I, Array<I>, ReadonlyArray<I>> => {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name}: n must be a positive integer, got ${n}`)
  return {
    name,
    create: () => [],
    accumulate: (acc, i) => insertBounded(acc, i, n, better),
    combine: (a, b) => {
      for (const i of b) insertBounded(a, i, n, better)
      return a
    },
    export: (acc) => acc.slice()
  }
}

/** The `n` greatest records by `compare`, greatest first. */
export const topN = <I>(n: number, compare: (a: I, b: I) => number) => bestN("topN")<I>(n, compare)

/** The `n` least records by `compare`, least first. */
export const bottomN = <I>(n: number, compare: (a: I, b: I) => number) =>
  bestN("bottomN")<I>(n, (a, b) => compare(b, a))

/** All records, in arrival order per instance. */
export const toList = <I>(): AggregateOp<I, Array<I>, ReadonlyArray<I>> => ({
  name: "toList",
  create: () => [],
  accumulate: (acc, i) => {
    acc.push(i)
    return acc
  },
  combine: (a, b) => {
    for (const i of b) a.push(i)
    return a
  },
  export: (acc) => acc.slice()
})

/** The distinct records. */
export const toSet = <I>(): AggregateOp<I, Set<I>, ReadonlySet<I>> => ({
  name: "toSet",
  create: () => new Set(),
  accumulate: (acc, i) => acc.add(i),
  combine: (a, b) => {
    for (const i of b) a.add(i)
    return a
  },
  export: (acc) => new Set(acc)
})

/** A map of `key(record)` to `value(record)`; a duplicate key is an error, as in Jet. */
export const toMap = <I, K, V>(key: (i: I) => K, value: (i: I) => V): AggregateOp<I, Map<K, V>, ReadonlyMap<K, V>> => {
  const put = (acc: Map<K, V>, k: K, v: V) => {
    if (acc.has(k)) throw new Error(`toMap: duplicate key ${JSON.stringify(k) ?? String(k)}`)
    return acc.set(k, v)
  }
  return {
    name: "toMap",
    create: () => new Map(),
    accumulate: (acc, i) => put(acc, key(i), value(i)),
    combine: (a, b) => {
      for (const [k, v] of b) put(a, k, v)
      return a
    },
    export: (acc) => new Map(acc)
  }
}

/** Groups records by `key` and runs `downstream` (default `toList`) per group. */
export const groupingBy = <I, K, A = Array<I>, R = ReadonlyArray<I>>(
  key: (i: I) => K,
  downstream: AggregateOp<I, A, R> = toList<I>() as unknown as AggregateOp<I, A, R>
): AggregateOp<I, Map<K, A>, ReadonlyMap<K, R>> => ({
  name: "groupingBy",
  create: () => new Map(),
  accumulate: (acc, i) => {
    const k = key(i)
    return acc.set(k, downstream.accumulate(acc.has(k) ? acc.get(k)! : downstream.create(), i))
  },
  combine: (a, b) => {
    for (const [k, v] of b) a.set(k, a.has(k) ? downstream.combine(a.get(k)!, v) : v)
    return a
  },
  export: (acc) => new Map([...acc].map(([k, v]) => [k, downstream.export(v)]))
})

/** Folds the records, each mapped by `map`, with `combine` from `empty` (an associative combine). */
export const reducing = <I, A>(
  empty: A,
  map: (i: I) => A,
  combine: (a: A, b: A) => A,
  deduct?: (a: A, b: A) => A
): AggregateOp<I, A, A> => ({
  name: "reducing",
  create: () => empty,
  accumulate: (acc, i) => combine(acc, map(i)),
  combine,
  deduct,
  export: (acc) => acc
})

/** Any one record (the first seen), or undefined. */
export const pickAny = <I>(): AggregateOp<I, I | undefined, I | undefined> => ({
  name: "pickAny",
  create: () => undefined,
  accumulate: (acc, i) => (acc === undefined ? i : acc),
  combine: (a, b) => (a === undefined ? b : a),
  export: (acc) => acc
})

/** Runs `op` on `f(record)`. */
export const mapping = <I, J, A, R>(f: (i: I) => J, op: AggregateOp<J, A, R>): AggregateOp<I, A, R> => ({
  ...op,
  name: `mapping(${op.name})`,
  accumulate: (acc, i) => op.accumulate(acc, f(i))
})

/** Runs `op` on the records `p` accepts. */
export const filtering = <I, A, R>(p: (i: I) => boolean, op: AggregateOp<I, A, R>): AggregateOp<I, A, R> => ({
  ...op,
  name: `filtering(${op.name})`,
  accumulate: (acc, i) => (p(i) ? op.accumulate(acc, i) : acc)
})

/** Runs `op` on every record `f` returns. */
export const flatMapping = <I, J, A, R>(f: (i: I) => Iterable<J>, op: AggregateOp<J, A, R>): AggregateOp<I, A, R> => ({
  ...op,
  name: `flatMapping(${op.name})`,
  accumulate: (acc, i) => {
    for (const j of f(i)) acc = op.accumulate(acc, j)
    return acc
  }
})

type AnyOp<I> = AggregateOp<I, any, any>
type Results<T> = { readonly [K in keyof T]: T[K] extends AggregateOp<any, any, infer R> ? R : never }
/** The input every op accepts: the intersection of their input types. */
type Inputs<Ops> = (Ops extends AggregateOp<infer I, any, any> ? (i: I) => void : never) extends (i: infer I) => void ? I
  : never

/**
 * Several operations over the same records at once. With a record of ops the
 * result is a record (`allOf({ n: counting(), sum: summing(f) })` →
 * `{ n, sum }`); with ops as arguments, a tuple.
 */
export const allOf: {
  // `I` comes from the stage the result feeds (so the ops' lambdas are typed), else from the ops.
  <const T extends Record<string, AnyOp<I>>, I = Inputs<T[keyof T]>>(ops: T): AggregateOp<I, Record<string, unknown>, Results<T>>
  <const T extends ReadonlyArray<AnyOp<any>>>(...ops: T): AggregateOp<Inputs<T[number]>, Array<unknown>, Results<T>>
} = (...args: ReadonlyArray<unknown>): AggregateOp<any, any, any> => {
  const single = args.length === 1 && !isOp(args[0])
  const named: ReadonlyArray<readonly [string | number, AnyOp<unknown>]> = single
    ? Object.entries(args[0] as Record<string, AnyOp<unknown>>)
    : (args as ReadonlyArray<AnyOp<unknown>>).map((op, i) => [i, op] as const)
  const ops = named.map(([, op]) => op)
  const shape = (values: ReadonlyArray<unknown>) =>
    single ? Object.fromEntries(named.map(([k], i) => [k, values[i]])) : values
  const parts = (acc: any): Array<unknown> => (single ? named.map(([k]) => acc[k]) : acc)
  return {
    name: `allOf(${ops.map((o) => o.name).join(", ")})`,
    create: () => shape(ops.map((o) => o.create())),
    accumulate: (acc, i) => {
      const accs = parts(acc)
      return shape(ops.map((o, k) => o.accumulate(accs[k], i)))
    },
    combine: (a, b) => {
      const as = parts(a)
      const bs = parts(b)
      return shape(ops.map((o, k) => o.combine(as[k], bs[k])))
    },
    deduct: ops.every((o) => o.deduct !== undefined)
      ? (a, b) => {
        const as = parts(a)
        const bs = parts(b)
        return shape(ops.map((o, k) => o.deduct!(as[k], bs[k])))
      }
      : undefined,
    export: (acc) => {
      const accs = parts(acc)
      return shape(ops.map((o, k) => o.export(accs[k])))
    }
  }
}

const isOp = (u: unknown): u is AnyOp<unknown> =>
  typeof u === "object" && u !== null && "accumulate" in u && "combine" in u && "create" in u

/**
 * Sums of `x - x0` and `y - y0` (their squares and products) relative to a
 * reference point `(x0, y0)` taken from the data, so that epoch timestamps
 * do not swamp the small differences the slope is made of.
 */
interface Regression {
  n: number
  x0: number
  y0: number
  sx: number
  sy: number
  sxx: number
  sxy: number
}

/** `acc`'s sums relative to `(x0, y0)` instead: the shift of Chan et al.'s pairwise formulas, about a data point rather than the mean (exact for integers). */
const rebase = (acc: Regression, x0: number, y0: number): Regression => {
  const { n, sx, sy } = acc
  const dx = acc.x0 - x0
  const dy = acc.y0 - y0
  return {
    n,
    x0,
    y0,
    sx: sx + n * dx,
    sy: sy + n * dy,
    sxx: acc.sxx + dx * (2 * sx + n * dx),
    sxy: acc.sxy + dx * sy + dy * sx + n * dx * dy
  }
}

const noPoints = (): Regression => ({ n: 0, x0: 0, y0: 0, sx: 0, sy: 0, sxx: 0, sxy: 0 })

/**
 * Least-squares slope of `y` over `x` (e.g. velocity from timestamped
 * positions). Sums are kept relative to a point of the data, and `combine`
 * moves them to the reference of its second argument (the newest frame, as a
 * window slides), so large `x` such as epoch milliseconds lose no precision;
 * for integer inputs `combine` and `deduct` are exact. NaN for fewer than two
 * points or no spread in `x`.
 */
export const linearTrend = <I>(x: (i: I) => number, y: (i: I) => number): AggregateOp<I, Regression, number> => ({
  name: "linearTrend",
  create: noPoints,
  accumulate: (acc, i) => {
    const xi = x(i)
    const yi = y(i)
    if (acc.n === 0) {
      acc.x0 = xi
      acc.y0 = yi
    }
    const dx = xi - acc.x0
    const dy = yi - acc.y0
    acc.n++
    acc.sx += dx
    acc.sy += dy
    acc.sxx += dx * dx
    acc.sxy += dx * dy
    return acc
  },
  combine: (a, b) => {
    if (a.n === 0 || b.n === 0) return { ...(a.n === 0 ? b : a) }
    const r = rebase(a, b.x0, b.y0)
    return { ...r, n: r.n + b.n, sx: r.sx + b.sx, sy: r.sy + b.sy, sxx: r.sxx + b.sxx, sxy: r.sxy + b.sxy }
  },
  deduct: (a, b) => {
    if (b.n === 0) return { ...a }
    if (a.n === b.n) return noPoints()
    const r = rebase(b, a.x0, a.y0)
    return { ...a, n: a.n - r.n, sx: a.sx - r.sx, sy: a.sy - r.sy, sxx: a.sxx - r.sxx, sxy: a.sxy - r.sxy }
  },
  export: ({ n, sx, sy, sxy, sxx }) => {
    const denominator = n * sxx - sx * sx
    return n < 2 || denominator === 0 ? NaN : (n * sxy - sx * sy) / denominator
  }
})
