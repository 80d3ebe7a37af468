import { Deferred, Effect, Fiber } from "effect"
import { ConnectorError, SourceError } from "../errors.ts"
import type { Dag, Edge } from "../plan/Dag.ts"
import type { KeyedColumns, RestoredState } from "../operator/Operator.ts"
import { partitionOf } from "../plan/partition.ts"
import type { Sink } from "../pipeline/Sink.ts"
import { FINAL_SNAPSHOT, type Snapshots } from "../snapshot/Coordinator.ts"
import { type Snapshot, unpackState } from "../snapshot/Snapshot.ts"
import { Channel, type Outlet, Signal } from "./Channel.ts"
import { DONE, type Item } from "./Control.ts"
import { Counters, type InstanceMetrics, type Sampled } from "./Metrics.ts"
import { type Input, type Output, runTasklet, sinkError } from "./Tasklet.ts"

export interface ExecutionOptions {
  readonly batchSize: number
  /** Bound of every channel, in batches. */
  readonly queueCapacity: number
  /** Drives snapshots when the job has a processing guarantee. */
  readonly coordinator: Snapshots | undefined
  /** The snapshot this execution starts from (after a restart). */
  readonly restored: Snapshot | undefined
  /** Milliseconds between snapshots. */
  readonly snapshotInterval: number
  /** Set when the job is spread over several members: which instances run here. */
  readonly placement?: Placement | undefined
  /** The job's name and the execution's number, for the ids and fencing of transactional sinks. */
  readonly job?: string | undefined
  readonly execution?: number | undefined
}

/**
 * How a job spread over several members (the cluster runtime) is wired: this
 * member runs the instances it hosts, and each channel between instances on
 * different members is an outlet on the producer's side and an inlet filling
 * a local channel on the consumer's.
 */
export interface Placement {
  readonly hosts: (vertex: number, instance: number) => boolean
  /** The producer's end of channel (edge, from, to), whose consumer runs elsewhere. */
  readonly outlet: (edge: number, from: number, to: number) => Outlet<Item>
  /** Fills `channel` with what the producer of (edge, from, to), elsewhere, sends, up to its Done. */
  readonly inlet: (edge: number, from: number, to: number, channel: Channel<Item>) => Effect.Effect<void, unknown>
  /** Told, as the execution starts, how many tasklets run here (what the coordinator waits to hear from). */
  readonly started?: ((tasklets: number) => void) | undefined
  /** With a processing guarantee: this member's side of the job coordinator, which runs elsewhere. */
  readonly snapshots?: Snapshots | undefined
  /** The snapshot the whole job restarts from. */
  readonly restored?: Snapshot | undefined
  /** The execution's number, the same on every member. */
  readonly execution?: number | undefined
}

/**
 * The state of `vertex`'s step `step` for instance `instance` of `parallelism`:
 * keyed entries of the partitions it owns now, local values of the instances
 * it replaces.
 */
const restoredState = (
  snapshot: Snapshot,
  stage: string,
  instance: number,
  parallelism: number,
  partitionCount: number
): RestoredState => {
  const keyed: Array<KeyedColumns> = []
  const local: Array<unknown> = []
  for (const s of snapshot.steps) {
    if (s.stage !== stage) continue
    const data = unpackState(s.chunks)
    for (const [tag, keys, values] of data.keyed) {
      const ownKeys: Array<unknown> = []
      const ownValues: Array<unknown> = []
      for (let i = 0; i < keys.length; i++) {
        if (partitionOf(keys[i], partitionCount) % parallelism !== instance) continue
        ownKeys.push(keys[i])
        ownValues.push(values[i])
      }
      if (ownKeys.length > 0) keyed.push([tag, ownKeys, ownValues])
    }
    if (s.instance % parallelism === instance) local.push(...data.local)
  }
  return { keyed, local }
}

/** Does producer instance `from` send to consumer instance `to` over `edge`? */
const reaches = (edge: Edge, from: number, to: number): boolean => {
  switch (edge.routing._tag) {
    case "OneToOne":
      return from === to
    case "AllToOne":
      return to === 0
    default:
      return true
  }
}

/**
 * Deploys a DAG in this process: one channel per (edge, producer instance,
 * consumer instance) pair and one tasklet fiber per vertex instance. Returns
 * the effect that runs them all (failing fast: the first failure interrupts
 * every other tasklet and closes their scopes) and a live view of the metrics.
 */
export const deploy = (dag: Dag, options: ExecutionOptions) => {
  const signals = dag.vertices.map((v) => Array.from({ length: v.parallelism }, () => new Signal()))
  const inputs = dag.vertices.map((v) => Array.from({ length: v.parallelism }, (): Array<Input> => []))
  const outputs = dag.vertices.map((v) => Array.from({ length: v.parallelism }, (): Array<Output> => []))
  const { placement } = options
  const hosted = (vertex: number, instance: number) => placement?.hosts(vertex, instance) ?? true
  const inlets: Array<Effect.Effect<void, unknown>> = []
  for (const [edgeId, edge] of dag.edges.entries()) {
    const producer = dag.vertices[edge.from]!
    const consumer = dag.vertices[edge.to]!
    for (let from = 0; from < producer.parallelism; from++) {
      const channels: Array<Outlet<Item> | undefined> = []
      for (let to = 0; to < consumer.parallelism; to++) {
        if (!reaches(edge, from, to) || (!hosted(edge.from, from) && !hosted(edge.to, to))) {
          channels.push(undefined)
          continue
        }
        if (!hosted(edge.to, to)) {
          channels.push(placement!.outlet(edgeId, from, to))
          continue
        }
        const channel = new Channel<Item>(options.queueCapacity, signals[edge.to]![to]!)
        channels.push(channel)
        if (!hosted(edge.from, from)) inlets.push(placement!.inlet(edgeId, from, to, channel))
        inputs[edge.to]![to]!.push({
          channel,
          ordinal: edge.ordinal,
          priority: edge.priority,
          done: false,
          idle: false,
          watermark: -Infinity,
          barrier: options.coordinator?.completed ?? 0,
          blocked: false
        })
      }
      outputs[edge.from]![from]!.push({ edge, channels })
    }
  }
  const counters = dag.vertices.map((v) => Array.from({ length: v.parallelism }, () => new Counters()))
  const draining = { requested: false }

  // With a coordinator, the sinks' final transactions (and the sources' final commits) are
  // committed by `finish`, once every tasklet here has ended: until then each keeps its scope
  // open, and with it the connections those commits go through.
  let ended = 0
  const allEnded = Deferred.makeUnsafe<void>()
  const finished = Deferred.makeUnsafe<void>()
  const heldOpen = Effect.suspend(() => {
    if (++ended === all.length) Deferred.doneUnsafe(allEnded, Effect.void)
    return Deferred.await(finished)
  })

  const instance = (vertexId: number, instance: number) =>
    Effect.scoped(Effect.andThen(Effect.gen(function*() {
      const vertex = dag.vertices[vertexId]!
      const ctx = { instance, instances: vertex.parallelism }
      const source = vertex.source
      const { restored, coordinator } = options
      const taskletKey = `${vertex.name}#${instance}`
      const ended = restored?.ended.includes(taskletKey) ?? false
      const restoredPosition = restored?.positions.find(([s, i]) => s === vertex.sourceKey && i === instance)
      /** Opens `sink` as instance `at` (of `instances`) and registers its commits with the coordinator. */
      const openSink = (sink: Sink<any, any>, at: number, instances: number) =>
        Effect.map(
          Effect.mapError(
            // A sink that had ended commits its final transaction too: nothing of it will replay.
            sink.open({
              instance: at,
              instances,
              restoredSnapshot: ended ? FINAL_SNAPSHOT : restored?.id,
              job: options.job,
              execution: placement?.execution ?? options.execution
            }),
            sinkError(sink.name)
          ),
          (writer) => {
            if (writer.commit && coordinator && !ended) {
              const commit = writer.commit
              coordinator.register(taskletKey, (id) => Effect.mapError(commit(id), sinkError(sink.name)))
            }
            return { name: sink.name, writer }
          }
        )
      const sinks = Effect.all({
        sink: vertex.sink ? openSink(vertex.sink, instance, vertex.parallelism) : Effect.undefined,
        lateSink: vertex.lateSink ? openSink(vertex.lateSink.sink, vertex.lateSink.offset + instance, vertex.lateSink.instances) : Effect.undefined,
        deadLetterSink: vertex.deadLetterSink
          ? openSink(vertex.deadLetterSink.sink, vertex.deadLetterSink.offset + instance, vertex.deadLetterSink.instances)
          : Effect.undefined
      })
      if (ended) {
        // It had ended before the restored snapshot, which covers all it sent: run again, it would
        // send it again (a sink: overwrite its committed final transaction with an empty one). Its
        // sinks only recover, committing that final transaction if the crash came first.
        yield* sinks
        yield* Effect.forEach(outputs[vertexId]![instance]!, (o) => Effect.forEach(o.channels, (c) => (c ? c.offer(DONE) : Effect.void)), {
          discard: true
        })
        if (coordinator) yield* coordinator.done(taskletKey, { steps: [], position: restoredPosition })
        return
      }
      const reader = source
        ? yield* Effect.mapError(source.open({
          ...ctx,
          batchSize: options.batchSize,
          restoredPosition: restoredPosition?.[2],
          restoredPositions: restored?.positions.filter(([s]) => s === vertex.sourceKey).map((p) => p[2])
        }), (cause) =>
          cause instanceof ConnectorError ? cause : new SourceError({ source: source.name, cause }))
        : undefined
      // A source that releases its input upstream once a snapshot holding its position is durable.
      if (reader?.commit && coordinator) {
        const commit = reader.commit
        coordinator.register(`${taskletKey}/source`, (id) =>
          Effect.mapError(commit(id), (cause) => cause instanceof ConnectorError ? cause : new SourceError({ source: source!.name, cause })))
      }
      // A step fails to start only with a stage's own error (a resource's), already annotated.
      const steps = yield* Effect.forEach(vertex.steps, (s) => s.make(ctx))
      if (restored) {
        for (const [index, step] of steps.entries()) {
          if (step._tag === "Sync" && step.op.restoreState) {
            step.op.restoreState(restoredState(restored, vertex.steps[index]!.stateKey, instance, vertex.parallelism, dag.partitionCount))
          }
        }
      }
      yield* runTasklet({
        vertex: vertex.name,
        instance,
        source: source && reader ? { name: source.name, reader } : undefined,
        ...(yield* sinks),
        idleTimeout: vertex.idleTimeout,
        steps,
        stepNames: vertex.steps.map((s) => s.name),
        stateKeys: vertex.steps.map((s) => s.stateKey),
        sourceKey: vertex.sourceKey,
        inputs: inputs[vertexId]![instance]!,
        signal: signals[vertexId]![instance]!,
        outputs: outputs[vertexId]![instance]!,
        batchSize: options.batchSize,
        partitionCount: dag.partitionCount,
        counters: counters[vertexId]![instance]!,
        coordinator,
        draining
      })
    }), options.coordinator ? heldOpen : Effect.void))

  // What a stage, a connector or the runtime logs names the job, the vertex and the instance.
  const all = dag.vertices.flatMap((v) =>
    Array.from({ length: v.parallelism }, (_, i) =>
      hosted(v.id, i) ? [Effect.annotateLogs(instance(v.id, i), { job: options.job, vertex: v.name, instance: i })] : []).flat()
  )
  const tasklets = Effect.andThen(
    Effect.sync(() => placement?.started?.(all.length)),
    Effect.forEach([...all, ...inlets], (t) => t, { concurrency: "unbounded", discard: true })
  )
  const { coordinator, snapshotInterval } = options
  const run = coordinator
    ? Effect.gen(function*() {
      const running = yield* Effect.forkChild(tasklets)
      // Joined too, so that a failing tasklet fails the run at once.
      yield* Effect.raceFirst(Effect.raceFirst(Fiber.join(running), Deferred.await(allEnded)), coordinator.drive(snapshotInterval))
      yield* coordinator.finish()
      Deferred.doneUnsafe(finished, Effect.void)
      yield* Fiber.join(running)
    })
    : tasklets

  /** Milliseconds instance `i` of `vertex` waited on full channels of its own (a remote outlet does not say). */
  const backPressuredMs = (vertex: number, i: number) => {
    let ms = 0
    for (const o of outputs[vertex]![i]!) for (const c of o.channels) if (c instanceof Channel) ms += c.blockedMs
    return ms
  }
  /** What the rates are derived from, per instance in the order of `metrics`. */
  const sampled = (): ReadonlyArray<Sampled> =>
    dag.vertices.flatMap((v) => counters[v.id]!.map((c, i): Sampled => [c.recordsIn, c.recordsOut, c.idleMs, backPressuredMs(v.id, i), c.processMs]))

  /** Live counters of every instance; `rate(index)` gives the per-second rates of the `index`-th's `Sampled`. */
  const metrics = (now: number, rate: (index: number) => Sampled): ReadonlyArray<InstanceMetrics> => {
    let index = 0
    return dag.vertices.flatMap((v) =>
      counters[v.id]!.map((c, i) => {
        const [recordsInRate, recordsOutRate, idleRate, backPressuredRate, processing] = rate(index++)
        const busyRate = Math.max(0, processing - backPressuredRate)
        // A wait that began before the interval is counted in it whole: scaled back to a second.
        const scale = Math.min(1, 1000 / (idleRate + backPressuredRate + busyRate || 1))
        return {
          vertex: v.name,
          instance: i,
          source: v.source?.name,
          sink: v.sink?.name,
          recordsIn: c.recordsIn,
          recordsOut: c.recordsOut,
          recordsInRate,
          recordsOutRate,
          batchesIn: c.batchesIn,
          batchesOut: c.batchesOut,
          idleTimeMsPerSecond: idleRate * scale,
          backPressuredTimeMsPerSecond: backPressuredRate * scale,
          busyTimeMsPerSecond: busyRate * scale,
          lateEvents: c.lateEvents,
          retries: c.retries + (c.sinkRetries?.() ?? 0),
          deadLetters: c.deadLetters,
          watermark: c.watermark,
          progress: c.progress?.(),
          watermarkLag: c.watermark === -Infinity || c.watermark === Infinity ? undefined : now - c.watermark,
          queues: inputs[v.id]![i]!.map((input) => ({
            size: input.channel.size,
            highWater: input.channel.highWater,
            capacity: input.channel.capacity
          }))
        }
      })
    )
  }

  /** Asks the sources to stop reading, as if their input ended: what they read flows on and closes every window. */
  const drain = () => {
    draining.requested = true
  }

  return { run, metrics, sampled, drain }
}
