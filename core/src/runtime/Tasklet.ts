import { Effect } from "effect"
import { SinkError, SourceError, StageError } from "../errors.ts"
import type { Step } from "../operator/Operator.ts"
import type { Edge } from "../plan/Dag.ts"
import { partitionOf } from "../plan/partition.ts"
import type { SinkWriter } from "../pipeline/Sink.ts"
import type { SourceReader } from "../pipeline/Source.ts"
import type { Channel, Signal } from "./Channel.ts"
import { DONE, type Item } from "./Control.ts"
import type { Counters } from "./Metrics.ts"

/** One input channel of a tasklet. */
export interface Input {
  readonly channel: Channel<Item>
  readonly ordinal: number
  readonly priority: number
  done: boolean
}

/** One output edge of a tasklet: a channel per consumer instance it reaches. */
export interface Output {
  readonly edge: Edge
  /** Indexed by consumer instance; `undefined` where this producer does not reach. */
  readonly channels: ReadonlyArray<Channel<Item> | undefined>
}

export interface TaskletSpec {
  readonly vertex: string
  readonly instance: number
  readonly source: { readonly name: string; readonly reader: SourceReader<unknown> } | undefined
  readonly sink: { readonly name: string; readonly writer: SinkWriter<unknown> } | undefined
  readonly steps: ReadonlyArray<Step>
  readonly stepNames: ReadonlyArray<string>
  readonly inputs: ReadonlyArray<Input>
  readonly signal: Signal
  readonly outputs: ReadonlyArray<Output>
  readonly batchSize: number
  readonly partitionCount: number
  readonly counters: Counters
}

/**
 * A tasklet: one instance of a vertex, run as a fiber. It takes batches from
 * its source or its input channels, runs them through its steps and sends the
 * results to its sink and output channels; a full channel suspends it
 * (backpressure). When every input is done it completes its operators, sends
 * `Done` downstream and ends.
 */
export const runTasklet = (spec: TaskletSpec): Effect.Effect<void, unknown, any> => {
  const { steps, counters, batchSize } = spec
  const allSync = steps.every((s) => s._tag === "Sync")
  let roundRobin = spec.instance

  /** Steps `from..` over one batch, synchronously (the common, fused case). */
  const runSync = (from: number, ordinal: number, batch: ReadonlyArray<unknown>): ReadonlyArray<unknown> => {
    let current = batch
    for (let i = from; i < steps.length && current.length > 0; i++) {
      const out: Array<unknown> = []
      ;(steps[i] as Extract<Step, { _tag: "Sync" }>).op.process(i === from ? ordinal : 0, current, out)
      current = out
    }
    return current
  }

  /** A throw inside an operator is a typed failure of the job, not a defect. */
  const attempt = <A>(stage: string, body: () => A): Effect.Effect<A, StageError> =>
    Effect.try({
      try: body,
      catch: (cause) => (cause instanceof StageError ? cause : new StageError({ stage, record: undefined, cause }))
    })

  const runSteps = (from: number, ordinal: number, batch: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<unknown>, unknown, any> =>
    allSync
      ? attempt(spec.vertex, () => runSync(from, ordinal, batch))
      : Effect.gen(function*() {
        let current = batch
        for (let i = from; i < steps.length && current.length > 0; i++) {
          const step = steps[i]!
          const ord = i === from ? ordinal : 0
          if (step._tag === "Async") current = yield* step.op.processAsync(current)
          else {
            const input = current
            current = yield* attempt(spec.stepNames[i]!, () => {
              const out: Array<unknown> = []
              step.op.process(ord, input, out)
              return out
            })
          }
        }
        return current
      })

  const offerChunks = (channel: Channel<Item>, batch: ReadonlyArray<unknown>): Effect.Effect<void> =>
    batch.length <= batchSize
      ? channel.offer(batch)
      : Effect.forEach(
        Array.from({ length: Math.ceil(batch.length / batchSize) }, (_, i) => batch.slice(i * batchSize, (i + 1) * batchSize)),
        (chunk) => channel.offer(chunk),
        { discard: true }
      )

  const route = (output: Output, batch: ReadonlyArray<unknown>): Effect.Effect<void, StageError> => {
    const { edge, channels } = output
    switch (edge.routing._tag) {
      case "OneToOne":
        return offerChunks(channels[spec.instance]!, batch)
      case "AllToOne":
        return offerChunks(channels[0]!, batch)
      case "RoundRobin":
        return offerChunks(channels[roundRobin++ % channels.length]!, batch)
      case "Broadcast":
        return Effect.forEach(channels, (c) => offerChunks(c!, batch), { discard: true })
      case "Partitioned": {
        const { key, stage } = edge.routing
        const n = channels.length
        return Effect.flatMap(
          attempt(stage, () => {
            const parts: Array<Array<unknown>> = Array.from({ length: n }, () => [])
            let i = 0
            try {
              for (; i < batch.length; i++) parts[partitionOf(key(batch[i]), spec.partitionCount) % n]!.push(batch[i])
            } catch (cause) {
              throw new StageError({ stage, record: batch[i], cause })
            }
            return parts
          }),
          (parts) => Effect.forEach(parts, (part, target) => part.length > 0 ? offerChunks(channels[target]!, part) : Effect.void, { discard: true })
        )
      }
    }
  }

  const emit = (batch: ReadonlyArray<unknown>): Effect.Effect<void, unknown, any> => {
    if (batch.length === 0) return Effect.void
    counters.recordsOut += batch.length
    counters.batchesOut++
    const toSink = spec.sink
      ? Effect.mapError(spec.sink.writer.write(batch), (cause) =>
        cause instanceof StageError ? cause : new SinkError({ sink: spec.sink!.name, cause }))
      : Effect.void
    return spec.outputs.length === 0
      ? toSink
      : Effect.andThen(toSink, Effect.forEach(spec.outputs, (o) => route(o, batch), { discard: true }))
  }

  const process = (ordinal: number, batch: ReadonlyArray<unknown>) => {
    counters.recordsIn += batch.length
    counters.batchesIn++
    return steps.length === 0 ? emit(batch) : Effect.flatMap(runSteps(0, ordinal, batch), emit)
  }

  /** Flushes each sync step in order; what a step flushes still flows through the steps after it. */
  const complete = Effect.gen(function*() {
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!
      if (step._tag === "Sync" && step.op.complete) {
        const op = step.op
        const flushed = yield* attempt(spec.stepNames[i]!, () => {
          const out: Array<unknown> = []
          op.complete!(out)
          return out
        })
        yield* emit(i + 1 < steps.length ? yield* runSteps(i + 1, 0, flushed) : flushed)
      }
    }
    if (spec.sink?.writer.complete) {
      yield* Effect.mapError(spec.sink.writer.complete, (cause) => new SinkError({ sink: spec.sink!.name, cause }))
    }
    for (const output of spec.outputs) {
      for (const channel of output.channels) if (channel) yield* channel.offer(DONE)
    }
  })

  const fromSource = (name: string, reader: SourceReader<unknown>) =>
    Effect.gen(function*() {
      while (true) {
        const batch = yield* Effect.mapError(reader.pull, (cause) => new SourceError({ source: name, cause }))
        if (batch === undefined) break
        if (batch.length === 0) yield* Effect.yieldNow
        else yield* process(0, batch)
      }
    })

  const fromInputs = Effect.gen(function*() {
    const inputs = spec.inputs
    let open = inputs.length
    let next = 0
    while (open > 0) {
      // Only inputs of the lowest pending priority are read (a join's side input first).
      let priority = Infinity
      for (const input of inputs) if (!input.done && input.priority < priority) priority = input.priority
      let item: Item | undefined
      let from: Input | undefined
      for (let k = 0; k < inputs.length && item === undefined; k++) {
        const input = inputs[(next + k) % inputs.length]!
        if (input.done || input.priority !== priority) continue
        item = input.channel.poll()
        from = input
      }
      next++
      if (item === undefined || from === undefined) {
        yield* spec.signal.wait
        continue
      }
      if (Array.isArray(item)) {
        yield* process(from.ordinal, item)
        continue
      }
      from.done = true
      open--
      const ordinal = from.ordinal
      if (inputs.every((i) => i.ordinal !== ordinal || i.done)) {
        const first = steps[0]
        if (first?._tag === "Sync" && first.op.completeInput) {
          const op = first.op
          const out = yield* attempt(spec.stepNames[0]!, () => {
            const out: Array<unknown> = []
            op.completeInput!(ordinal, out)
            return out
          })
          yield* emit(steps.length > 1 ? yield* runSteps(1, 0, out) : out)
        }
      }
    }
  })

  return Effect.andThen(spec.source ? fromSource(spec.source.name, spec.source.reader) : fromInputs, complete)
}
