import { Effect } from "effect"
import { SinkError, SourceError, StageError } from "../errors.ts"
import type { Dag, Edge } from "../plan/Dag.ts"
import type { KeyedColumns, RestoredState } from "../operator/Operator.ts"
import { partitionOf } from "../plan/partition.ts"
import type { Sink } from "../pipeline/Sink.ts"
import { type Coordinator, FINAL_SNAPSHOT } from "../snapshot/Coordinator.ts"
import { type Snapshot, unpackState } from "../snapshot/Snapshot.ts"
import { Channel, Signal } from "./Channel.ts"
import type { Item } from "./Control.ts"
import { Counters, type InstanceMetrics } from "./Metrics.ts"
import { type Input, type Output, runTasklet } from "./Tasklet.ts"

export interface ExecutionOptions {
  readonly batchSize: number
  /** Bound of every channel, in batches. */
  readonly queueCapacity: number
  /** Drives snapshots when the job has a processing guarantee. */
  readonly coordinator: Coordinator | undefined
  /** The snapshot this execution starts from (after a restart). */
  readonly restored: Snapshot | undefined
  /** Milliseconds between snapshots. */
  readonly snapshotInterval: number
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
  for (const edge of dag.edges) {
    const producer = dag.vertices[edge.from]!
    const consumer = dag.vertices[edge.to]!
    for (let from = 0; from < producer.parallelism; from++) {
      const channels: Array<Channel<Item> | undefined> = []
      for (let to = 0; to < consumer.parallelism; to++) {
        if (!reaches(edge, from, to)) {
          channels.push(undefined)
          continue
        }
        const channel = new Channel<Item>(options.queueCapacity, signals[edge.to]![to]!)
        channels.push(channel)
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

  const instance = (vertexId: number, instance: number) =>
    Effect.scoped(Effect.gen(function*() {
      const vertex = dag.vertices[vertexId]!
      const ctx = { instance, instances: vertex.parallelism }
      const source = vertex.source
      const { restored, coordinator } = options
      const restoredPosition = restored?.positions.find(([s, i]) => s === vertex.sourceKey && i === instance)?.[2]
      const reader = source
        ? yield* Effect.mapError(source.open({ ...ctx, batchSize: options.batchSize, restoredPosition }), (cause) =>
          new SourceError({ source: source.name, cause }))
        : undefined
      const steps = yield* Effect.forEach(vertex.steps, (s) =>
        Effect.mapError(s.make(ctx), (cause) =>
          cause instanceof StageError ? cause : new StageError({ stage: s.name, record: undefined, cause })))
      if (restored) {
        for (const [index, step] of steps.entries()) {
          if (step._tag === "Sync" && step.op.restoreState) {
            step.op.restoreState(restoredState(restored, vertex.steps[index]!.stateKey, instance, vertex.parallelism, dag.partitionCount))
          }
        }
      }
      const openSink = (sink: Sink<any, any> | undefined) =>
        sink
          ? Effect.map(
            Effect.mapError(
              sink.open({
                ...ctx,
                // A sink that had ended commits its final transaction too: nothing of it will replay.
                restoredSnapshot: restored?.ended.includes(`${vertex.name}#${instance}`) ? FINAL_SNAPSHOT : restored?.id
              }),
              (cause) => new SinkError({ sink: sink.name, cause })
            ),
            (writer) => {
              if (writer.commit && coordinator) {
                const commit = writer.commit
                coordinator.register(
                  `${vertex.name}#${instance}`,
                  (id) => Effect.mapError(commit(id), (cause) => new SinkError({ sink: sink.name, cause }))
                )
              }
              return { name: sink.name, writer }
            }
          )
          : Effect.succeed(undefined)
      yield* runTasklet({
        vertex: vertex.name,
        instance,
        source: source && reader ? { name: source.name, reader } : undefined,
        sink: yield* openSink(vertex.sink),
        lateSink: yield* openSink(vertex.lateSink),
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
        coordinator
      })
    }))

  const all = dag.vertices.flatMap((v) => Array.from({ length: v.parallelism }, (_, i) => instance(v.id, i)))
  const tasklets = Effect.forEach(all, (t) => t, { concurrency: "unbounded", discard: true })
  const { coordinator, snapshotInterval } = options
  const run = coordinator
    ? Effect.andThen(
      Effect.raceFirst(tasklets, Effect.forever(Effect.andThen(Effect.sleep(snapshotInterval), Effect.sync(() => coordinator.request())))),
      coordinator.finish()
    )
    : tasklets

  const metrics = (): ReadonlyArray<InstanceMetrics> =>
    dag.vertices.flatMap((v) =>
      counters[v.id]!.map((c, i) => ({
        vertex: v.name,
        instance: i,
        recordsIn: c.recordsIn,
        recordsOut: c.recordsOut,
        batchesIn: c.batchesIn,
        batchesOut: c.batchesOut,
        lateEvents: c.lateEvents,
        watermark: c.watermark,
        queues: inputs[v.id]![i]!.map((input) => ({
          size: input.channel.size,
          highWater: input.channel.highWater,
          capacity: input.channel.capacity
        }))
      }))
    )

  return { run, metrics }
}
