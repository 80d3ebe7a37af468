import { Effect } from "effect"
import { ConnectorError, SinkError, SourceError, StageError } from "../errors.ts"
import type { KeyedColumns, Operator, Step } from "../operator/Operator.ts"
import { deadLetter, Rejecting, rejectedError } from "../operator/Rejecting.ts"
import { FINAL_SNAPSHOT, type Snapshots } from "../snapshot/Coordinator.ts"
import { packState, type StepState } from "../snapshot/Snapshot.ts"
import type { Edge } from "../plan/Dag.ts"
import { partitionOf } from "../plan/partition.ts"
import type { SinkWriter } from "../pipeline/Sink.ts"
import type { DeadLetter } from "../pipeline/DeadLetter.ts"
import type { Origin, SourceReader } from "../pipeline/Source.ts"
import type { Channel, Outlet, Signal } from "./Channel.ts"
import { Barrier, type Control, DONE, IDLE, type Item, Watermark } from "./Control.ts"
import type { Counters } from "./Metrics.ts"

/** One input channel of a tasklet, with what watermark coalescing needs to know of it. */
export interface Input {
  readonly channel: Channel<Item>
  readonly ordinal: number
  readonly priority: number
  done: boolean
  idle: boolean
  watermark: number
  /** The last snapshot barrier this input delivered. */
  barrier: number
  /** Held back until the barrier is aligned on all inputs (exactly-once). */
  blocked: boolean
}

/** One output edge of a tasklet: a channel per consumer instance it reaches. */
export interface Output {
  readonly edge: Edge
  /** Indexed by consumer instance; `undefined` where this producer does not reach. */
  readonly channels: ReadonlyArray<Outlet<Item> | undefined>
}

export interface TaskletSpec {
  readonly vertex: string
  readonly instance: number
  readonly source: { readonly name: string; readonly reader: SourceReader<unknown> } | undefined
  readonly sink: { readonly name: string; readonly writer: SinkWriter<unknown> } | undefined
  readonly lateSink: { readonly name: string; readonly writer: SinkWriter<unknown> } | undefined
  readonly deadLetterSink: { readonly name: string; readonly writer: SinkWriter<unknown> } | undefined
  readonly idleTimeout: number | undefined
  readonly steps: ReadonlyArray<Step>
  readonly stepNames: ReadonlyArray<string>
  readonly stateKeys: ReadonlyArray<string>
  readonly sourceKey: string | undefined
  readonly inputs: ReadonlyArray<Input>
  readonly signal: Signal
  readonly outputs: ReadonlyArray<Output>
  readonly batchSize: number
  readonly partitionCount: number
  readonly counters: Counters
  /** Set when the job has a processing guarantee. */
  readonly coordinator: Snapshots | undefined
  /** Set when the job is stopped with drain: a source reads no more and ends as a bounded one does. */
  readonly draining?: { readonly requested: boolean } | undefined
}

type SyncOp = Operator<unknown, unknown>

/** How long a tasklet runs before it lets the rest of the process (timers, I/O) have a turn. */
const YIELD_INTERVAL_MS = 5

/**
 * A tasklet: one instance of a vertex, run as a fiber. It takes batches from
 * its source or its input channels, runs them through its steps and sends the
 * results to its sink and output channels; a full channel suspends it
 * (backpressure). Watermarks from its inputs are coalesced (the minimum over
 * inputs that are neither done nor idle) and passed through its operators.
 * When every input is done it completes its operators, sends `Done`
 * downstream and ends.
 */
export const runTasklet = (spec: TaskletSpec): Effect.Effect<void, unknown, any> => {
  const { steps, counters, batchSize } = spec
  counters.sinkRetries = spec.sink?.writer.retries
  const allSync = steps.every((s) => s._tag === "Sync")
  const syncOps = steps.flatMap((s, i) => (s._tag === "Sync" ? [{ op: s.op as SyncOp, index: i }] : []))
  // A step that assigns timestamps makes the watermarks of this vertex; upstream ones stop here.
  const generator = syncOps.find((s) => s.op.watermark !== undefined)
  const lateOps = syncOps.filter((s) => s.op.late !== undefined).map((s) => s.op)
  const rejecting = syncOps.flatMap(({ op, index }) => (op instanceof Rejecting ? [{ op, index }] : []))
  // A first step that rejects records of the source's batches names where they came from.
  const origins = spec.source !== undefined && rejecting[0]?.index === 0
  let origin: Origin | undefined
  const ticking = syncOps.filter((s) => s.op.onTick !== undefined && s.op.tickInterval !== undefined)
  const tickInterval = ticking.length === 0 ? undefined : Math.min(...ticking.map((s) => s.op.tickInterval!))
  let roundRobin = spec.instance
  let sentWatermark = -Infinity

  // Tasklets resume each other synchronously through channels, and Effect does
  // not count a generator step that yields a ready value toward its yield
  // budget: without this, a busy pipeline whose stages emit nothing could keep
  // timers and I/O of the whole process waiting forever.
  let lastYield = Date.now()
  const cooperate = Effect.suspend(() => {
    const now = Date.now()
    if (now - lastYield < YIELD_INTERVAL_MS) return Effect.void
    lastYield = now
    return Effect.yieldNow
  })

  /** A throw inside an operator is a typed failure of the job, not a defect. */
  const attempt = <A>(stage: string, body: () => A): Effect.Effect<A, StageError> =>
    Effect.try({
      try: body,
      catch: (cause) => (cause instanceof StageError ? cause : new StageError({ stage, record: undefined, cause }))
    })

  /** Steps `from..` over one batch, synchronously (the common, fused case). */
  const runSync = (from: number, ordinal: number, batch: ReadonlyArray<unknown>): ReadonlyArray<unknown> => {
    let current = batch
    for (let i = from; i < steps.length && current.length > 0; i++) {
      const out: Array<unknown> = []
      ;(steps[i]!.op as SyncOp).process(i === from ? ordinal : 0, current, out)
      current = out
    }
    return current
  }

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

  /** Runs `body(op, out)` on sync step `index` and sends what it emits through the steps after it. */
  const flushStep = (index: number, body: (op: SyncOp, out: Array<unknown>) => void) =>
    Effect.gen(function*() {
      const op = steps[index]!.op as SyncOp
      const out = yield* attempt(spec.stepNames[index]!, () => {
        const out: Array<unknown> = []
        body(op, out)
        return out
      })
      yield* emit(index + 1 < steps.length ? yield* runSteps(index + 1, 0, out) : out)
    })

  const offerChunks = (channel: Outlet<Item>, batch: ReadonlyArray<unknown>): Effect.Effect<void, unknown> =>
    batch.length <= batchSize
      ? channel.offer(batch)
      : Effect.forEach(
        Array.from({ length: Math.ceil(batch.length / batchSize) }, (_, i) => batch.slice(i * batchSize, (i + 1) * batchSize)),
        (chunk) => channel.offer(chunk),
        { discard: true }
      )

  const route = (output: Output, batch: ReadonlyArray<unknown>): Effect.Effect<void, unknown> => {
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
          (parts) =>
            Effect.forEach(parts, (part, target) => (part.length > 0 ? offerChunks(channels[target]!, part) : Effect.void), {
              discard: true
            })
        )
      }
    }
  }

  const write = (sink: { readonly name: string; readonly writer: SinkWriter<unknown> }, batch: ReadonlyArray<unknown>) =>
    Effect.mapError(sink.writer.write(batch), sinkError(sink.name))

  /** Late records the operators put aside: counted, and written to the late-events sink if there is one. */
  const drainLate = Effect.suspend(() => {
    let late: Array<unknown> | undefined
    for (const op of lateOps) {
      if (op.late!.length === 0) continue
      counters.lateEvents += op.late!.length
      if (spec.lateSink) (late ??= []).push(...op.late!)
      op.late!.length = 0
    }
    return late && spec.lateSink ? write(spec.lateSink, late) : Effect.void
  })

  /** Records the steps rejected: to the dead-letter sink, counted; or, for a step without one, the job's failure. */
  const drainRejected = Effect.suspend(() => {
    let letters: Array<DeadLetter> | undefined
    for (const { op, index } of rejecting) {
      if (op.rejected.length === 0) continue
      const at = index === 0 ? origin : undefined
      if (!op.deadLetters) return Effect.fail(rejectedError(op.rejected[0]!, at))
      counters.deadLetters += op.rejected.length
      letters ??= []
      for (const r of op.rejected) letters.push(deadLetter(r, at))
      op.rejected.length = 0
    }
    return letters ? write(spec.deadLetterSink!, letters) : Effect.void
  })

  const emit = (batch: ReadonlyArray<unknown>): Effect.Effect<void, unknown, any> =>
    rejecting.length === 0 ? emitOutput(batch) : Effect.andThen(drainRejected, emitOutput(batch))

  const emitOutput = (batch: ReadonlyArray<unknown>): Effect.Effect<void, unknown, any> => {
    if (batch.length === 0) return lateOps.length === 0 ? Effect.void : drainLate
    counters.recordsOut += batch.length
    counters.batchesOut++
    const toSink = spec.sink ? write(spec.sink, batch) : Effect.void
    const all = spec.outputs.length === 0
      ? toSink
      : Effect.andThen(toSink, Effect.forEach(spec.outputs, (o) => route(o, batch), { discard: true }))
    return lateOps.length === 0 ? all : Effect.andThen(all, drainLate)
  }

  /** Sends a control item on every output channel, in order with the batches sent before it. */
  const broadcast = (item: Control) =>
    Effect.forEach(spec.outputs, (o) => Effect.forEach(o.channels, (c) => (c ? c.offer(item) : Effect.void), { discard: true }), {
      discard: true
    })

  /** Passes watermark `time` through the steps after `from` (closing windows) and downstream. */
  const advance = (from: number, time: number) =>
    Effect.gen(function*() {
      if (time <= sentWatermark) return
      sentWatermark = time
      counters.watermark = time
      for (const { op, index } of syncOps) {
        if (index >= from && op.onWatermark) yield* flushStep(index, (o, out) => o.onWatermark!(time, out))
      }
      yield* broadcast(new Watermark(time))
    })

  const afterBatch = Effect.suspend(() => {
    if (!generator) return Effect.void
    const time = generator.op.watermark!()
    return time > sentWatermark ? advance(generator.index + 1, time) : Effect.void
  })

  const toStageError = (cause: unknown) =>
    cause instanceof StageError ? cause : new StageError({ stage: spec.vertex, record: undefined, cause })

  /**
   * One input batch through the steps and out. The all-synchronous case runs
   * as plain code and builds no effect unless there is output to send: this is
   * the per-batch overhead of every tasklet.
   */
  const process = (ordinal: number, batch: ReadonlyArray<unknown>): Effect.Effect<void, unknown, any> => {
    counters.recordsIn += batch.length
    counters.batchesIn++
    let out: ReadonlyArray<unknown>
    if (!allSync) out = batch
    else {
      try {
        out = runSync(0, ordinal, batch)
      } catch (cause) {
        return Effect.fail(toStageError(cause))
      }
      if (out.length === 0 && lateOps.length === 0 && rejecting.length === 0 && !generator) return Effect.void
    }
    const run = allSync ? emit(out) : Effect.flatMap(runSteps(0, ordinal, batch), emit)
    return generator ? Effect.andThen(run, afterBatch) : run
  }

  const tick = Effect.suspend(() => {
    const now = Date.now()
    return Effect.forEach(ticking, ({ index }) => flushStep(index, (op, out) => op.onTick!(now, out)), { discard: true })
  })

  /** Flushes each sync step in order; what a step flushes still flows through the steps after it. */
  const complete = Effect.gen(function*() {
    for (const { op, index } of syncOps) if (op.complete) yield* flushStep(index, (o, out) => o.complete!(out))
    for (const sink of [spec.sink, spec.lateSink, spec.deadLetterSink]) {
      if (!sink) continue
      const { writer, name } = sink
      const failed = sinkError(name)
      // The last transaction of a two-phase-commit sink: committed once the whole job has
      // succeeded (by the coordinator), or right away when no snapshot could restore it.
      if (writer.prepare) yield* Effect.mapError(writer.prepare(FINAL_SNAPSHOT), failed)
      if (writer.commit && !spec.coordinator) yield* Effect.mapError(writer.commit(FINAL_SNAPSHOT), failed)
      if (writer.complete) yield* Effect.mapError(writer.complete, failed)
    }
    yield* broadcast(DONE)
    if (spec.coordinator) yield* spec.coordinator.done(taskletKey, { steps: [], position: position() })
  })

  const taskletKey = `${spec.vertex}#${spec.instance}`
  const position = (snapshot?: number) =>
    spec.source?.reader.position ? [spec.sourceKey!, spec.instance, spec.source.reader.position(snapshot)] as const : undefined

  /**
   * This tasklet's part of snapshot `id`: operator state, source position, sink transaction;
   * `alignmentMs`, how long its first input's barrier waited for the others.
   */
  const snapshot = (coordinator: Snapshots, id: number, alignmentMs = 0) =>
    Effect.gen(function*() {
      const states: Array<StepState> = []
      let entries = 0
      for (const { op, index } of syncOps) {
        if (!op.saveState) continue
        const keys: Array<unknown> = []
        const values: Array<unknown> = []
        const keyed: Array<KeyedColumns> = [[undefined, keys, values]]
        const local: Array<unknown> = []
        yield* attempt(spec.stepNames[index]!, () =>
          op.saveState!({
            keyed: (k, v) => {
              keys.push(k)
              values.push(v)
            },
            keyedColumns: (tag, keys, values) => void keyed.push([tag, keys, values]),
            local: (v) => void local.push(v)
          }))
        for (const [, keys] of keyed) entries += keys.length
        states.push({ stage: spec.stateKeys[index]!, instance: spec.instance, chunks: packState({ keyed, local }) })
      }
      for (const sink of [spec.sink, spec.lateSink, spec.deadLetterSink]) {
        if (sink?.writer.prepare) {
          yield* Effect.mapError(sink.writer.prepare(id), sinkError(sink.name))
        }
      }
      const at = position(id)
      yield* broadcast(new Barrier(id))
      yield* coordinator.ack(id, taskletKey, { steps: states, position: at, keys: entries, alignmentMs })
    })

  const fromSource = (name: string, reader: SourceReader<unknown>) =>
    Effect.gen(function*() {
      let lastData = Date.now()
      let idle = false
      counters.progress = reader.progress
      const pull = Effect.mapError(reader.pull, (cause) => (cause instanceof ConnectorError ? cause : new SourceError({ source: name, cause })))
      // A source of splits with the timestamps stage right here: a watermark per split.
      const splits = generator?.op.fromSplit ? reader.splits : undefined
      const coordinator = spec.coordinator
      let barrier = coordinator?.completed ?? 0
      while (true) {
        yield* cooperate
        if (coordinator && coordinator.requested > barrier) {
          barrier = coordinator.requested
          yield* snapshot(coordinator, barrier)
          // After a terminal snapshot nothing more is read: the job stops with nothing to replay.
          if (barrier === coordinator.terminal) return yield* Effect.never
        }
        if (spec.draining?.requested) break
        const before = origins && !reader.origin ? reader.position?.() : undefined
        const pulled = performance.now()
        const batch = yield* pull
        if (reader.retries) counters.retries = reader.retries()
        if (batch === undefined) break
        if (origins) origin = reader.origin ? reader.origin() : reader.position && { position: before }
        if (batch.length > 0) {
          lastData = Date.now()
          idle = false
          if (splits) generator!.op.fromSplit!(splits.current()!, splits.takeAdded(), splits.takeEnded())
          yield* process(0, batch)
          // A source's work is its pull and the processing of what it brought.
          counters.processMs += performance.now() - pulled
          continue
        }
        // No data now: splits that ended or went idle meanwhile may let the watermark on.
        if (splits) {
          generator!.op.fromSplit!(undefined, splits.takeAdded(), splits.takeEnded())
          yield* afterBatch
        }
        // After the idle timeout, stop holding back downstream watermarks.
        if (!idle && spec.idleTimeout !== undefined && Date.now() - lastData >= spec.idleTimeout) {
          idle = true
          yield* broadcast(IDLE)
        }
        if (tickInterval !== undefined) yield* tick
        yield* Effect.yieldNow
        // A pull without data, and what followed it: waiting for input.
        counters.idleMs += performance.now() - pulled
      }
    })

  /** The minimum watermark over inputs that still count: not done, not idle. */
  const coalesce = (): number | undefined => {
    let min = Infinity
    let active = 0
    for (const input of spec.inputs) {
      if (input.done || input.idle) continue
      active++
      if (input.watermark < min) min = input.watermark
    }
    return active === 0 ? undefined : min
  }

  let aligned = spec.coordinator?.completed ?? 0
  // When the first input delivered the barrier being aligned.
  let alignmentStart: number | undefined
  /** Once every input delivered the pending barrier (or ended): snapshot, pass it on, release held inputs. */
  const alignBarrier = Effect.suspend(() => {
    const coordinator = spec.coordinator
    if (!coordinator) return Effect.void
    let id = Infinity
    for (const input of spec.inputs) if (!input.done && input.barrier < id) id = input.barrier
    const pending = Math.max(...spec.inputs.map((i) => i.barrier))
    if (pending <= aligned || (id !== Infinity && id < pending)) return Effect.void
    aligned = pending
    for (const input of spec.inputs) input.blocked = false
    const alignmentMs = alignmentStart === undefined ? 0 : performance.now() - alignmentStart
    alignmentStart = undefined
    return snapshot(coordinator, pending, alignmentMs)
  })

  const onControl = (from: Input, item: Control) =>
    Effect.gen(function*() {
      switch (item._tag) {
        case "Watermark":
          from.watermark = item.time
          from.idle = false
          break
        case "Idle":
          from.idle = true
          break
        case "Barrier":
          from.barrier = item.id
          if (item.id > aligned) alignmentStart ??= performance.now()
          from.blocked = spec.coordinator?.guarantee === "exactly-once"
          yield* alignBarrier
          return
        case "Done": {
          from.done = true
          const ordinal = from.ordinal
          const first = steps[0]
          if (first?._tag === "Sync" && first.op.completeInput && spec.inputs.every((i) => i.ordinal !== ordinal || i.done)) {
            yield* flushStep(0, (op, out) => op.completeInput!(ordinal, out))
          }
          break
        }
      }
      if (item._tag === "Done") yield* alignBarrier
      if (generator) return
      const time = coalesce()
      if (time !== undefined && time !== Infinity) yield* advance(0, time)
      else if (time === undefined && item._tag === "Idle") yield* broadcast(IDLE)
    })

  const fromInputs = Effect.gen(function*() {
    const inputs = spec.inputs
    let open = inputs.length
    let next = 0
    let lastTick = Date.now()
    while (open > 0) {
      yield* cooperate
      // Only inputs of the lowest pending priority are read (a join's side input first).
      let priority = Infinity
      for (const input of inputs) if (!input.done && input.priority < priority) priority = input.priority
      let item: Item | undefined
      let from: Input | undefined
      for (let k = 0; k < inputs.length && item === undefined; k++) {
        const input = inputs[(next + k) % inputs.length]!
        if (input.done || input.blocked || input.priority !== priority) continue
        item = input.channel.poll()
        from = input
      }
      next++
      if (tickInterval !== undefined && Date.now() - lastTick >= tickInterval) {
        lastTick = Date.now()
        yield* tick
      }
      if (item === undefined || from === undefined) {
        const since = performance.now()
        yield* tickInterval === undefined
          ? spec.signal.wait
          : Effect.raceFirst(spec.signal.wait, Effect.sleep(tickInterval))
        counters.idleMs += performance.now() - since
        continue
      }
      if (Array.isArray(item)) {
        from.idle = false
        const since = performance.now()
        yield* process(from.ordinal, item)
        counters.processMs += performance.now() - since
        continue
      }
      if ((item as Control)._tag === "Done") open--
      yield* onControl(from, item as Control)
    }
  })

  return Effect.andThen(spec.source ? fromSource(spec.source.name, spec.source.reader) : fromInputs, complete)
}

/** A sink's failure as the job reports it: a connector that gave up, or a stage that failed inside the sink, as they are. */
export const sinkError = (sink: string) => (cause: unknown) =>
  cause instanceof StageError || cause instanceof ConnectorError ? cause : new SinkError({ sink, cause })
