/**
 * Turns a pipeline's logical graph into a DAG of vertices and edges:
 * - adjacent local stages fuse into one vertex (one tasklet, one loop per batch)
 *   unless a stage's output feeds several consumers;
 * - keyed stages sit behind a partitioned edge; aggregations run in two stages
 *   (accumulate in the producing vertex, combine per key after the edge);
 * - a side input of a join is broadcast and consumed first (edge priority);
 * - after `withTimestamps` records travel as `{ t, v }` events; stages that do
 *   not use event time get bare records (an unwrapping step is added).
 */
import { Effect } from "effect"
import { PlanError } from "../errors.ts"
import { Accumulate, CoGroupCombine, Combine, RollingAggregate } from "../operator/Aggregation.ts"
import { HashJoin, MAIN, SIDE } from "../operator/HashJoin.ts"
import { Expiry } from "../operator/Expiry.ts"
import { failAt } from "../operator/failure.ts"
import { mapBatched } from "../operator/MapBatched.ts"
import { mapEffect } from "../operator/MapEffect.ts"
import { async, type Operator, sync } from "../operator/Operator.ts"
import { Rejecting } from "../operator/Rejecting.ts"
import { Sort } from "../operator/Sort.ts"
import { Distinct, MapStateful } from "../operator/Stateful.ts"
import { WithTimestamps } from "../operator/Timestamps.ts"
import { makeTransform, type PlannedTransform } from "../operator/Transform.ts"
import { FrameAccumulate, SlidingWindowAggregate } from "../window/SlidingWindow.ts"
import { SessionWindowAggregate } from "../window/SessionWindow.ts"
import { inputsOf, type Node } from "../pipeline/Node.ts"
import type { Sink } from "../pipeline/Sink.ts"
import { isPipeline, isStage, type Pipeline } from "../pipeline/StageValue.ts"
import type { Dag, Edge, Routing, SideSink, StepFactory, Vertex } from "./Dag.ts"

export interface PlanOptions {
  /** Instances of each parallel vertex. */
  readonly parallelism: number
  /** Instances of each source vertex (default `parallelism`), capped by the source's `maxParallelism`. */
  readonly sourceParallelism?: number | undefined
  readonly partitionCount: number
  /** The job's instances are spread over processes (see `Sink.inProcess`). */
  readonly spread?: boolean | undefined
}

interface Builder extends Vertex {
  pending: Array<PlannedTransform>
  pendingTimed: boolean
  /** The unique name of the sink stage it writes to. */
  sinkKey: string | undefined
  /** Its sink of late events, one instance of the sink shared by every vertex feeding it. */
  late: Sink<any, any> | undefined
  /** Its dead-letter sink, likewise. */
  dead: Sink<any, any> | undefined
}

const unwrap = (): Operator<{ readonly v: unknown }, unknown> => ({
  process: (_ordinal, batch, out) => {
    for (let i = 0; i < batch.length; i++) out.push(batch[i]!.v)
  }
})

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))

const byEntryKey = (entry: readonly [unknown, unknown]) => entry[0]

export const plan = (pipeline: Pipeline<any, any>, options: PlanOptions): Dag => {
  const { parallelism } = options
  const sourceParallelism = options.sourceParallelism ?? parallelism
  // From JavaScript a stage (or anything else) may come where a pipeline belongs.
  if (!isPipeline(pipeline) || pipeline.sinks.some((s) => s?.kind !== "sink")) {
    throw new PlanError({ reason: `${isStage(pipeline) ? "a stage" : "not a pipeline"}: end each stage in a sink with Stage.writeTo(sink)` })
  }
  if (pipeline.sinks.length === 0) throw new PlanError({ reason: "the pipeline has no sink" })
  if (!Number.isInteger(parallelism) || parallelism < 1) {
    throw new PlanError({ reason: `parallelism must be a positive integer, got ${parallelism}` })
  }

  // The nodes reading each node, and a unique name per node in topological order.
  const readers = new Map<Node, Array<Node>>()
  const names = new Map<Node, string>()
  const used = new Map<string, number>()
  const visit = (node: Node) => {
    if (names.has(node)) return
    for (const input of inputsOf(node)) {
      const known = readers.get(input)
      if (known) known.push(node)
      else readers.set(input, [node])
      visit(input)
    }
    const base = node.name ?? (node.kind === "source" ? node.source.name : node.kind === "sink" ? node.sink.name : node.kind)
    const n = (used.get(base) ?? 0) + 1
    used.set(base, n)
    if (node.name !== undefined && n > 1) throw new PlanError({ reason: `two stages are named "${base}"` })
    names.set(node, n === 1 ? base : `${base}-${n}`)
    if (node.window !== undefined && node.kind !== "aggregate") {
      throw new PlanError({ reason: `stage "${names.get(node)}": ${node.kind} does not take a window; Stage.window applies to the Stage.aggregate after it` })
    }
  }
  pipeline.sinks.forEach(visit)
  const nameOf = (node: Node) => names.get(node)!

  /** The name of an unbounded source `node` reads (through its main input, for a join), if any. */
  const unboundedMemo = new Map<Node, string | undefined>()
  const unboundedSource = (node: Node): string | undefined => {
    if (unboundedMemo.has(node)) return unboundedMemo.get(node)
    const inputs = node.kind === "hashJoin" ? [node.input] : inputsOf(node)
    const found = node.kind === "source"
      ? (node.source.bounded ? undefined : nameOf(node))
      : inputs.map(unboundedSource).find((s) => s !== undefined)
    unboundedMemo.set(node, found)
    return found
  }
  /** A stage that emits only when its input ends would never emit, and grow without limit, on an unbounded one. */
  const needsBounded = (node: Node, inputs: ReadonlyArray<Node>, what: string, instead?: string) => {
    const source = inputs.map(unboundedSource).find((s) => s !== undefined)
    if (source !== undefined) {
      throw new PlanError({
        reason: `stage "${nameOf(node)}": ${what} needs a bounded input, but source "${source}" is unbounded${instead ? `; ${instead}` : ""}`
      })
    }
  }
  /** A duration option in milliseconds: finite, and positive unless zero is allowed. */
  const duration = (node: Node, option: string, ms: number | undefined, allowZero = false) => {
    if (ms !== undefined && !(Number.isFinite(ms) && (ms > 0 || (allowZero && ms === 0)))) {
      throw new PlanError({ reason: `stage "${nameOf(node)}": ${option} must be ${allowZero ? "zero or more" : "positive"}, got ${ms} ms` })
    }
  }
  /** Window results travel as events only when a stage (not just sinks) reads them. */
  const timedOutput = (node: Node) => readers.get(node)?.some((r) => r.kind !== "sink") ?? false

  /**
   * How coarse the watermarks of timestamps stage `node` may be without changing a result: the
   * greatest common divisor of the steps of the tumbling and sliding windows downstream (they
   * close at multiples of their step), when only such windows act on watermarks there; 0 (exact)
   * otherwise. A watermark is a control item to every consumer instance, other members included:
   * one per frame instead of one per batch.
   */
  const watermarkGranularity = (node: Node): number => {
    let granularity = 0
    const seen = new Set<Node>()
    const exactNeeded = (n: Node): boolean =>
      (readers.get(n) ?? []).some((r) => {
        if (seen.has(r)) return false
        seen.add(r)
        if (r.kind === "aggregate" && r.window !== undefined) {
          if (r.window._tag === "Session" || !Number.isInteger(r.window.step)) return true
          granularity = gcd(granularity, r.window.step)
        }
        // Expiry is exact in event time.
        if ((r.kind === "rollingAggregate" || r.kind === "mapStateful") && r.ttl !== undefined) return true
        if (r.kind === "mapStateful" && r.expireAt !== undefined) return true
        return exactNeeded(r)
      })
    return exactNeeded(node) ? 0 : granularity
  }

  const vertices: Array<Builder> = []
  const edges: Array<Edge> = []
  const vertexOf = new Map<Node, Builder>()

  const newVertex = (node: Node, vertexParallelism: number): Builder => {
    // Only the source's own vertex reads it; one made behind it (its output feeds several) does not.
    const reads = node.kind === "source" && !vertexOf.has(node) ? node : undefined
    const v: Builder = {
      id: vertices.length,
      name: "",
      parallelism: vertexParallelism,
      source: reads?.source,
      sourceKey: reads && nameOf(reads),
      steps: [],
      sink: undefined,
      sinkKey: undefined,
      lateSink: undefined,
      late: undefined,
      deadLetterSink: undefined,
      dead: undefined,
      idleTimeout: undefined,
      pending: [],
      pendingTimed: false
    }
    vertices.push(v)
    return v
  }
  const connect = (from: Vertex, to: Vertex, routing: Routing, ordinal = 0, priority = 0) =>
    edges.push({ from: from.id, to: to.id, ordinal, priority, routing })
  const flush = (v: Builder) => {
    if (v.pending.length === 0) return
    const stages = v.pending
    v.pending = []
    const timed = v.pendingTimed
    const name = stages.map((s) => s.name).join("→")
    v.steps.push({ name, stateKey: name, make: () => makeTransform(stages, timed) })
  }
  const addStep = (v: Builder, name: string, make: StepFactory, stateKey = name) => {
    flush(v)
    v.steps.push({ name, stateKey, make })
  }
  const addOp = (v: Builder, name: string, op: () => Operator<any, any>, stateKey = name) =>
    addStep(v, name, () => Effect.sync(() => sync(op())), stateKey)
  /** The first (local) stage of a two-stage operation: its state is saved apart from the second's. */
  const addFirstStage = (v: Builder, name: string, op: () => Operator<any, any>, stateKey = `${name}/local`) =>
    addOp(v, name, op, stateKey)

  /** The vertex a stage reading `input` runs in: `input`'s own, unless its output also feeds others. */
  const fuseTarget = (input: Node): Builder => {
    const v = lower(input)
    if (readers.get(input)?.length === 1 && v.sink === undefined) return v
    const w = newVertex(input, v.parallelism)
    connect(v, w, { _tag: "OneToOne" })
    return w
  }
  /**
   * A fresh vertex behind a keyed (partitioned) or, without key, all-to-one edge.
   * Into a single instance a keyed edge is all-to-one too: hashing every key to
   * pick among one consumer cost Q5 of NEXMark a sixth of its time.
   */
  const behindKey = (from: Vertex, node: Node, key: ((a: any) => unknown) | undefined) => {
    const w = newVertex(node, key === undefined ? 1 : parallelism)
    connect(from, w, key === undefined || w.parallelism === 1 ? { _tag: "AllToOne" } : { _tag: "Partitioned", stage: nameOf(node), key })
    return w
  }


  /** Does `node` emit `{ t, v }` events (it is downstream of `withTimestamps`)? */
  const timedMemo = new Map<Node, boolean>()
  const timed = (node: Node): boolean => {
    let t = timedMemo.get(node)
    if (t === undefined) {
      t = isTimed(node)
      timedMemo.set(node, t)
    }
    return t
  }
  const isTimed = (node: Node): boolean => {
    switch (node.kind) {
      case "timestamps":
        return true
      case "map":
      case "decode":
      case "filter":
      case "flatMap":
      case "peek":
      case "mapUsingService":
      case "rollingAggregate":
      case "mapStateful":
      case "rebalance":
        return timed(node.input)
      case "merge":
        return node.inputs.every(timed)
      case "aggregate":
        return node.window !== undefined && timedOutput(node)
      default:
        return false
    }
  }
  /** A stateless stage joins the pending chain of `v`; a chain is all timed or all bare. */
  const addTransform = (v: Builder, isTimedInput: boolean, stage: PlannedTransform) => {
    if (v.pending.length > 0 && v.pendingTimed !== isTimedInput) flush(v)
    v.pendingTimed = isTimedInput
    v.pending.push(stage)
  }
  /** The vertex to fuse a stage into, its records unwrapped if `input` is timed. */
  const fuseBare = (input: Node): Builder => {
    const v = fuseTarget(input)
    if (timed(input)) addOp(v, `${nameOf(input)}/untimed`, unwrap)
    return v
  }
  /** The vertex whose output edge carries `input`'s records bare. */
  const bareOutput = (input: Node): Builder => (timed(input) ? fuseBare(input) : lower(input))
  /** A key function over the bare record, also when records travel timed. */
  const keyOn = (input: Node, key: (a: any) => unknown) => (timed(input) ? (e: { v: unknown }) => key(e.v) : key)

  const lower = (node: Node): Builder => {
    const done = vertexOf.get(node)
    if (done) return done
    const v = lowerNew(node)
    vertexOf.set(node, v)
    return v
  }

  const lowerWindow = (node: Extract<Node, { kind: "aggregate" }>, name: string): Builder => {
    const { key, op, lateSink } = node
    const window = node.window!
    if (!timed(node.input)) {
      throw new PlanError({ reason: `stage "${name}": a window needs event times; add Stage.withTimestamps before it` })
    }
    // Events late at their timestamp stage go to the window's late sink too.
    let upstream: Node = node.input
    while (upstream.kind !== "timestamps" && "input" in upstream) upstream = upstream.input
    if (upstream.kind === "timestamps") lower(upstream).late ??= lateSink
    let w: Builder
    const upstream0 = lower(node.input)
    const timedOut = timedOutput(node)
    if (window._tag === "Sliding" && window.earlyResultsPeriod === undefined && upstream0.parallelism > 1) {
      // Two stages: frames accumulate where the events are, only frame partials cross the edge.
      const v = fuseTarget(node.input)
      addFirstStage(v, name, () => new FrameAccumulate(name, op, key, window))
      v.late ??= lateSink
      w = behindKey(v, node, key === undefined ? undefined : byEntryKey)
      addOp(w, name, () => new SlidingWindowAggregate(name, op, key, window, true, timedOut))
    } else {
      // Sessions merge per key, and early results need every event: one stage after the edge.
      w = behindKey(lower(node.input), node, key && keyOn(node.input, key))
      addOp(w, name, () =>
        window._tag === "Session"
          ? new SessionWindowAggregate(name, op, key, window, timedOut)
          : new SlidingWindowAggregate(name, op, key, window, false, timedOut))
    }
    w.late = lateSink
    return w
  }

  const lowerNew = (node: Node): Builder => {
    const name = nameOf(node)
    switch (node.kind) {
      case "source":
        // Spread over members, a source of splits follows them: its positions are per split.
        const instances = options.spread && node.source.rescalable ? parallelism : sourceParallelism
        return newVertex(node, Math.min(instances, node.source.maxParallelism ?? instances))
      case "map":
      case "decode": {
        const { fn, deadLetters } = node
        if (node.kind === "map" && deadLetters === undefined) {
          const v = fuseTarget(node.input)
          addTransform(v, timed(node.input), { kind: "map", name, fn })
          return v
        }
        // A vertex has one dead-letter sink: a stage with another one starts the next vertex.
        let v = fuseTarget(node.input)
        if (deadLetters !== undefined && v.dead !== undefined && v.dead !== deadLetters) {
          const w = newVertex(node, v.parallelism)
          connect(v, w, { _tag: "OneToOne" })
          v = w
        }
        v.dead ??= deadLetters
        const isTimedInput = timed(node.input)
        addOp(v, name, () => new Rejecting(name, fn, isTimedInput, deadLetters !== undefined))
        return v
      }
      case "filter":
      case "flatMap":
      case "peek": {
        const v = fuseTarget(node.input)
        addTransform(v, timed(node.input), { kind: node.kind, name, fn: node.fn })
        return v
      }
      case "mapUsingService": {
        const v = fuseTarget(node.input)
        addTransform(v, timed(node.input), { kind: "map", name, acquire: node.acquire, fnWithService: node.fn })
        return v
      }
      case "timestamps": {
        duration(node, "allowedLag", node.allowedLag, true)
        duration(node, "idleTimeout", node.idleTimeout)
        if (timed(node.input)) throw new PlanError({ reason: `stage "${name}": the records already have timestamps` })
        let time = node.time
        if (time === "native") {
          const source = node.input.kind === "source" ? node.input.source : undefined
          if (source?.eventTime === undefined) {
            throw new PlanError({ reason: `stage "${name}": withNativeTimestamps needs a source that carries event times` })
          }
          time = source.eventTime
        }
        const v = fuseTarget(node.input)
        const { allowedLag } = node
        const fn = time
        const granularity = watermarkGranularity(node)
        addOp(v, name, () => new WithTimestamps(name, fn, allowedLag, granularity, node.idleTimeout))
        v.idleTimeout = node.idleTimeout
        return v
      }
      case "mapBatched": {
        const v = fuseBare(node.input)
        const { acquire, fn } = node
        addStep(v, name, () => Effect.map(Effect.catch(acquire, failAt(name, undefined)), (service) => async(mapBatched(name, service, fn))))
        return v
      }
      case "mapEffect": {
        const v = fuseBare(node.input)
        const { fn, concurrency, ordered } = node
        addStep(v, name, () => Effect.succeed(async(mapEffect(name, fn, concurrency, ordered))))
        return v
      }
      case "aggregate": {
        if (node.window !== undefined) return lowerWindow(node, name)
        needsBounded(node, [node.input], "an aggregate without a window", "add Stage.window before it, or use Stage.rollingAggregate for a running result")
        const { key, op } = node
        const v = fuseBare(node.input)
        addFirstStage(v, name, () => new Accumulate(name, op, key))
        const w = behindKey(v, node, key === undefined ? undefined : byEntryKey)
        addOp(w, name, () => new Combine(name, op, key !== undefined))
        return w
      }
      case "rollingAggregate": {
        const { key, op, ttl } = node
        duration(node, "ttl", ttl)
        const isTimedInput = timed(node.input)
        if (ttl !== undefined && !isTimedInput) {
          throw new PlanError({ reason: `stage "${name}": a ttl is in event time and needs withTimestamps first` })
        }
        const w = behindKey(lower(node.input), node, key && keyOn(node.input, key))
        addOp(w, name, () =>
          Object.assign(new RollingAggregate(name, op, key), { timed: isTimedInput, ttl, expiry: ttl === undefined ? undefined : new Expiry(ttl / 64) }))
        return w
      }
      case "mapStateful": {
        const { key, create, fn, ttl, expireAt, onEvict } = node
        duration(node, "ttl", ttl)
        const isTimedInput = timed(node.input)
        if ((ttl !== undefined || expireAt !== undefined) && !isTimedInput) {
          throw new PlanError({ reason: `stage "${name}": state expiry is in event time and needs withTimestamps first` })
        }
        const w = behindKey(lower(node.input), node, key && keyOn(node.input, key))
        addOp(w, name, () =>
          Object.assign(new MapStateful(name, key, create, fn), {
            timed: isTimedInput,
            ttl,
            expireAt,
            // Index granularity only (expiry is exact): a 64th of the ttl, or a second for deadlines.
            expiry: ttl !== undefined ? new Expiry(ttl / 64) : expireAt !== undefined ? new Expiry(1000) : undefined,
            onEvict
          }))
        return w
      }
      case "distinct": {
        const { key } = node
        const v = fuseBare(node.input)
        addFirstStage(v, name, () => new Distinct(name, key))
        const w = behindKey(v, node, key)
        addOp(w, name, () => new Distinct(name, key))
        return w
      }
      case "hashJoin": {
        needsBounded(node, [node.side], "the side input of a join (loaded whole before the main input flows)")
        const main = bareOutput(node.input)
        const side = bareOutput(node.side)
        const w = newVertex(node, main.parallelism)
        connect(main, w, { _tag: "OneToOne" }, MAIN, 1)
        connect(side, w, { _tag: "Broadcast" }, SIDE, 0)
        const { leftKey, rightKey, fn, inner } = node
        addOp(w, name, () => new HashJoin(name, leftKey, rightKey, fn, inner))
        return w
      }
      case "cogroup": {
        needsBounded(node, node.inputs.map((i) => i.node), "cogroup")
        const w = newVertex(node, parallelism)
        node.inputs.forEach(({ key, node: input, op }, ordinal) => {
          const v = fuseBare(input)
          addFirstStage(v, name, () => new Accumulate(name, op, key), `${name}/${ordinal}`)
          connect(v, w, { _tag: "Partitioned", stage: name, key: byEntryKey }, ordinal)
        })
        const ops = node.inputs.map((i) => i.op)
        const { labels } = node
        addOp(w, name, () => new CoGroupCombine(name, ops, labels))
        return w
      }
      case "merge": {
        const w = newVertex(node, parallelism)
        const allTimed = timed(node)
        node.inputs.forEach((input, ordinal) => {
          const v = allTimed ? lower(input) : bareOutput(input)
          connect(v, w, v.parallelism === w.parallelism ? { _tag: "OneToOne" } : { _tag: "RoundRobin" }, ordinal)
        })
        return w
      }
      case "rebalance": {
        const w = newVertex(node, parallelism)
        const { key } = node
        connect(lower(node.input), w, key === undefined ? { _tag: "RoundRobin" } : { _tag: "Partitioned", stage: name, key: keyOn(node.input, key) })
        return w
      }
      case "sort": {
        needsBounded(node, [node.input], "sort", "for an order per window, use Stage.window with Aggregate.topN or toList")
        const { compare } = node
        const v = fuseBare(node.input)
        addFirstStage(v, name, () => new Sort(name, compare))
        const w = behindKey(v, node, undefined)
        addOp(w, name, () => new Sort(name, compare))
        return w
      }
      case "sink": {
        const max = node.sink.inProcess && options.spread ? 1 : node.sink.maxParallelism ?? parallelism
        const v = fuseBare(node.input)
        if (v.parallelism <= max) {
          v.sink = node.sink
          v.sinkKey = nameOf(node)
          return v
        }
        const w = newVertex(node, max)
        w.sink = node.sink
        w.sinkKey = nameOf(node)
        connect(v, w, max === 1 ? { _tag: "AllToOne" } : { _tag: "RoundRobin" })
        return w
      }
    }
  }

  pipeline.sinks.forEach(lower)
  // Vertex names key tasklets in snapshots and commits: made of unique stage names, and unique.
  const vertexNames = new Set<string>()
  // A side sink (of late events, of dead letters) fed by several vertices is one sink: each vertex gets a range of its instances.
  const sideInstances = new Map<Sink<any, any>, number>()
  const side = (sink: Sink<any, any>, v: Builder) => {
    const offset = sideInstances.get(sink) ?? 0
    sideInstances.set(sink, offset + v.parallelism)
    return { sink, offset, instances: 0 }
  }
  const withInstances = (s: SideSink | undefined) => s && { ...s, instances: sideInstances.get(s.sink)! }
  for (const v of vertices) {
    flush(v)
    const parts = [v.sourceKey, ...v.steps.map((s) => s.name), v.sinkKey].filter((p) => p !== undefined)
    let name = parts.join("→") || `vertex-${v.id}`
    if (vertexNames.has(name)) name = `${name}-v${v.id}`
    vertexNames.add(name)
    ;(v as { name: string }).name = name
    if (v.late) v.lateSink = side(v.late, v)
    if (v.dead) v.deadLetterSink = side(v.dead, v)
  }
  for (const v of vertices) {
    v.lateSink = withInstances(v.lateSink)
    v.deadLetterSink = withInstances(v.deadLetterSink)
  }
  return { vertices, edges, partitionCount: options.partitionCount }
}
