import { Cause, Clock, Console, Context, Data, Deferred, Duration, Effect, Exit, Fiber, Logger, type LogLevel, Queue, References, type Scope, Stream } from "effect"
import { StreamOutput, type StreamOutputOf } from "../connectors/stream.ts"
import { isUnrecoverable, JobCancelledError, type JobError, PlanError } from "../errors.ts"
import type { Dag } from "../plan/Dag.ts"
import { plan } from "../plan/Planner.ts"
import { DEFAULT_PARTITION_COUNT } from "../plan/partition.ts"
import type { Pipeline } from "../pipeline/Pipeline.ts"
import { deploy, type Placement } from "../runtime/Execution.ts"
import { formatSummary, type InstanceMetrics, type JobException, type JobMetrics, type JobSummary, remember, type Sampled, type SnapshotInfo, summarize } from "../runtime/Metrics.ts"
import { Coordinator, type Guarantee } from "../snapshot/Coordinator.ts"
import type { Snapshot, SnapshotError } from "../snapshot/Snapshot.ts"
import * as SnapshotStore from "../snapshot/SnapshotStore.ts"
import * as RestartPolicy from "./RestartPolicy.ts"
import * as Progress from "./Progress.ts"
import * as Telemetry from "./Telemetry.ts"
import * as Jobs from "../management/Jobs.ts"

export interface JobOptions {
  /** Shown in errors and metrics. */
  readonly name?: string | undefined
  /** Instances of each parallel vertex in this process (default 1). */
  readonly parallelism?: number | undefined
  /**
   * Instances of each source (default: `parallelism`, capped by the source's
   * `maxParallelism`). A cluster keeps it fixed while members come and go:
   * a source's positions belong to the slices of input its instances read;
   * there a source made of splits (positions per split) follows the members.
   */
  readonly sourceParallelism?: number | undefined
  /** Records per batch (default 1024). */
  readonly batchSize?: number | undefined
  /** Bound of every queue between tasklets, in batches (default 4). */
  readonly queueCapacity?: number | undefined
  /** Partitions of keyed state (default 271). */
  readonly partitionCount?: number | undefined
  /**
   * `none` (default): a failure fails the job. `at-least-once` / `exactly-once`:
   * snapshots are taken every `snapshotInterval` and a failed job restarts from
   * the last complete one, replaying its sources from there.
   */
  readonly processingGuarantee?: Guarantee | undefined
  /** Time between snapshots (default 10 seconds). */
  readonly snapshotInterval?: Duration.Input | undefined
  /** Where snapshots are kept (default: the `SnapshotStore.layer` provided, else in memory). */
  readonly snapshotStore?: SnapshotStore.SnapshotStore | undefined
  /** When a failure restarts the job and when it fails it (default: 10 failures within 5 minutes). */
  readonly restartPolicy?: RestartPolicy.RestartPolicy | undefined
  /** Shorthand for `restartPolicy: RestartPolicy.maxRestarts(n)`: `n` failures in all, however far apart. */
  readonly maxRestarts?: number | undefined
  /**
   * Complete snapshots kept in the store (default 2): when the newest is found
   * damaged, the job restores the newest intact one.
   */
  readonly retainedSnapshots?: number | undefined
  /** Start from the snapshot exported under this name (`Job.exportSnapshot`) in the snapshot store. */
  readonly initialSnapshot?: string | undefined
  /** The least level the job's logs are written at (default: the `References.MinimumLogLevel` in effect, `Info`). */
  readonly logLevel?: LogLevel.LogLevel | undefined
  /** `json`: the job's logs as one JSON object a line (`Logger.consoleJson`), with their job, vertex and instance annotations. */
  readonly logFormat?: "text" | "json" | undefined
  /**
   * Set by the cluster runtime when the job is spread over several members:
   * which instances run in this process and how channels reach the others.
   */
  readonly placement?: Placement | undefined
  /**
   * How often the job samples its metrics: the rates are over this interval,
   * and the Effect metrics (`Telemetry`) are published at it (default 1 second).
   */
  readonly metricsInterval?: Duration.Input | undefined
  /**
   * `false`: the job is not sampled — its rates stay 0 and nothing is published to Effect's
   * metrics (Prometheus, OTLP). `Job.metrics` still reads its counters, which the tasklets bump
   * once per batch whatever this says. Default true.
   */
  readonly metrics?: boolean | undefined
}

export type JobStatus = "running" | "restarting" | "suspended" | "completed" | "failed" | "cancelled"

/** A lifecycle operation that the job's state or options do not allow. */
export class JobStateError extends Data.TaggedError("JobStateError")<{
  readonly job: string
  readonly reason: string
}> {
  override get message() {
    return `job "${this.job}": ${this.reason}`
  }
}

/** A handle on a submitted job whose stages fail with `E`. */
export interface Job<out E = never> {
  readonly id: string
  readonly name: string
  readonly status: Effect.Effect<JobStatus>
  /** Live metrics: counters and rates of every vertex instance, snapshot history, failures. */
  readonly metrics: Effect.Effect<JobMetrics>
  /** The totals so far: records read and written, late events, dead letters, time since submission. */
  readonly summary: Effect.Effect<JobSummary>
  /** Stops the job and releases its resources; `join` then fails with `JobCancelledError`. */
  readonly cancel: Effect.Effect<void>
  /** Waits for the end of a bounded job, failing with what failed it. */
  readonly join: Effect.Effect<void, E | JobError>
  /** Takes a final snapshot and stops, keeping the state (needs a processing guarantee). */
  readonly suspend: Effect.Effect<void, JobStateError | SnapshotError>
  /** Continues a suspended job from its final snapshot. */
  readonly resume: Effect.Effect<void, JobStateError | SnapshotError>
  /** Stops and starts again from the last complete snapshot. */
  readonly restart: Effect.Effect<void, JobStateError | SnapshotError>
  /**
   * Takes a snapshot now and keeps a copy under `name` in the job's snapshot
   * store; a new job (possibly a changed pipeline) starts from it with the
   * `initialSnapshot` option, its state matched by stage name.
   */
  readonly exportSnapshot: (name: string) => Effect.Effect<void, JobStateError | SnapshotError>
  /**
   * Deletes the snapshot exported under `name` from the job's snapshot store
   * (Flink's savepoint disposal); the job's own snapshots are kept by its
   * retention and cannot be deleted so.
   */
  readonly deleteSnapshot: (name: string) => Effect.Effect<void, JobStateError | SnapshotError>
  /**
   * Stops a running job. With `drain` (the default, Flink's `stop --drain`) its
   * sources stop reading and end as bounded ones do: what they read flows on, a
   * final watermark closes every open window, the sinks commit (a
   * two-phase-commit sink its final transaction) and the job completes; the
   * effect waits for that end. Without `drain` it is `suspend`.
   */
  readonly stop: (options?: { readonly drain?: boolean | undefined }) => Effect.Effect<void, E | JobError | JobStateError | SnapshotError>
}

let jobCounter = 0

/** An integer option of at least `min` (1 unless said otherwise), or `fallback` when omitted. */
const integer = (name: string, value: number | undefined, fallback: number, min = 1): number => {
  const v = value ?? fallback
  if (!Number.isInteger(v) || v < min) {
    throw new PlanError({ reason: `${name} must be ${min === 1 ? "a positive integer" : `an integer of at least ${min}`}, got ${v}` })
  }
  return v
}

/**
 * A snapshot fits a pipeline when every stage and source it holds state for is
 * still there, and every source has as many instances as when it was taken.
 */
const checkCompatible = (dag: Dag, snapshot: Snapshot, from: string) => {
  const stages = new Set(dag.vertices.flatMap((v) => v.steps.map((s) => s.stateKey)))
  const sources = new Set(dag.vertices.flatMap((v) => (v.sourceKey ? [v.sourceKey] : [])))
  const missing = [
    ...snapshot.steps.filter((s) => !stages.has(s.stage)).map((s) => `stage "${s.stage}"`),
    ...snapshot.positions.filter(([source]) => !sources.has(source)).map(([source]) => `source "${source}"`)
  ]
  if (missing.length > 0) {
    throw new PlanError({
      reason: `snapshot "${from}" holds state of ${[...new Set(missing)].join(", ")}, which the pipeline no longer has`
    })
  }
  // Keyed state moves between instances by partition; a source's position belongs to the
  // slice of the input its instance read, and a slice cut another way would replay or skip.
  for (const v of dag.vertices) {
    const saved = snapshot.positions.filter(([source]) => source === v.sourceKey).length
    if (saved > 0 && saved !== v.parallelism && !v.source?.rescalable) {
      throw new PlanError({
        reason: `snapshot "${from}" holds the positions of ${saved} instances of source "${v.sourceKey}", ` +
          `which now has ${v.parallelism}: a source without splits keeps its parallelism across a snapshot (cap it with the source's maxParallelism)`
      })
    }
  }
}

/**
 * Plans and starts a job in the current scope and returns its handle at once.
 * Closing the scope cancels a job that is still running.
 */
export const submit = <E, R>(
  pipeline: Pipeline<E, R>,
  options: JobOptions = {}
): Effect.Effect<Job<E>, PlanError | SnapshotError, R | Scope.Scope> =>
  Effect.gen(function*() {
    const id = `job-${++jobCounter}`
    const name = options.name ?? id
    const guarantee = options.processingGuarantee ?? "none"
    const store = options.snapshotStore ?? (yield* SnapshotStore.Current) ?? SnapshotStore.memory()
    const { dag, executionOptions, restartPolicy, retain } = yield* Effect.try({
      try: () => {
        const dag = plan(pipeline, {
          parallelism: integer("parallelism", options.parallelism, 1),
          sourceParallelism: options.sourceParallelism === undefined ? undefined : integer("sourceParallelism", options.sourceParallelism, 1),
          partitionCount: integer("partitionCount", options.partitionCount, DEFAULT_PARTITION_COUNT),
          spread: options.placement !== undefined
        })
        return {
          dag,
          restartPolicy: RestartPolicy.fromOptions(options),
          retain: integer("retainedSnapshots", options.retainedSnapshots, SnapshotStore.DEFAULT_RETAINED),
          executionOptions: {
            batchSize: integer("batchSize", options.batchSize, 1024),
            queueCapacity: integer("queueCapacity", options.queueCapacity, 4),
            snapshotInterval: integer("snapshotInterval", Duration.toMillis(options.snapshotInterval ?? "10 seconds"), 1),
            placement: options.placement
          }
        }
      },
      catch: (e) => (e instanceof PlanError ? e : new PlanError({ reason: String(e) }))
    })
    if (options.placement && guarantee !== "none") {
      return yield* new PlanError({ reason: "a job spread over members gets its processing guarantee from the cluster, not from each member's options" })
    }
    let initial: Snapshot | undefined
    if (options.initialSnapshot !== undefined) {
      const exported = yield* SnapshotStore.latest(store, options.initialSnapshot)
      if (!exported) return yield* new PlanError({ reason: `no snapshot named "${options.initialSnapshot}" in ${store.name}` })
      yield* Effect.try({
        try: () => checkCompatible(dag, exported, options.initialSnapshot!),
        catch: (e) => e as PlanError
      })
      // The new job's snapshots continue from the exported one, under its own name.
      yield* store.save({ ...exported, job: name })
      initial = { ...exported, job: name }
    }
    const tasklets = dag.vertices.reduce((n, v) => n + v.parallelism, 0)
    const started = yield* Clock.currentTimeMillis
    const snapshots: Array<SnapshotInfo> = []
    const exceptions: Array<JobException> = []
    let draining = false
    const scope = yield* Effect.scope
    // The services the job was submitted with (a file system for a directory store, ...), for the handle's operations.
    // The job's fibers run in this context: the log options apply to them, not to the caller.
    let context = yield* Effect.context<any>()
    if (options.logLevel !== undefined) context = Context.add(context, References.MinimumLogLevel, options.logLevel)
    if (options.logFormat === "json") context = Context.add(context, Logger.CurrentLoggers, new Set([Logger.consoleJson]))
    const latest = Effect.provideContext(SnapshotStore.latest(store, name), context) as Effect.Effect<Snapshot | undefined, SnapshotError>
    const outcome = yield* Deferred.make<void, E | JobError>()
    let status: JobStatus = "running"
    let restarts = 0
    let failures: RestartPolicy.Failures = []
    let current = deploy(dag, { ...executionOptions, coordinator: undefined, restored: undefined })
    // Execution numbers grow across restarts and also across processes resuming the job (the clock's
    // milliseconds), so a transactional sink fences off an older execution but never a newer one.
    let execution = 0
    const nextExecution = () => (execution = Math.max(execution + 1, Date.now()))
    let coordinator: Coordinator | undefined
    // The newest snapshot whose output this job committed: a restart never goes back before it to nothing.
    let committed = initial?.id ?? 0
    let fiber: Fiber.Fiber<void, unknown> | undefined

    /** One execution, from `restored` (or the start); a failure restarts from the last complete snapshot. */
    const execute = (restored: Snapshot | undefined): Effect.Effect<void, unknown, any> =>
      Effect.suspend(() => {
        const remote = options.placement?.snapshots
        if (remote) {
          // A member of a cluster: the job's coordinator runs elsewhere and decides restarts.
          current = deploy(dag, { ...executionOptions, job: name, coordinator: remote, restored: options.placement!.restored })
          return Effect.scoped(current.run)
        }
        const c = guarantee === "none" ? undefined : new Coordinator(name, store, tasklets, guarantee, restored?.id ?? 0, retain, snapshots)
        coordinator = c
        current = deploy(dag, { ...executionOptions, job: name, execution: nextExecution(), coordinator, restored })
        if (draining) current.drain()
        return Effect.catchCause(Effect.scoped(current.run), (cause) =>
          Effect.gen(function*() {
            if (!c || Cause.hasInterruptsOnly(cause) || isUnrecoverable(Cause.squash(cause))) return yield* Effect.failCause(cause)
            const counted = RestartPolicy.onFailure(failures, restartPolicy, yield* Clock.currentTimeMillis)
            if (!counted) return yield* Effect.failCause(cause)
            failures = counted
            restarts++
            remember(exceptions, { time: Date.now(), message: Cause.pretty(cause), restarted: true })
            status = "restarting"
            committed = Math.max(committed, c.completed)
            yield* Effect.sleep(RestartPolicy.delayBefore(restartPolicy, counted))
            return yield* SnapshotStore.recover(store, name, committed).pipe(
              // Back to running either way: a job that cannot recover fails as a running one does.
              Effect.onExit(() => Effect.sync(() => void (status = "running"))),
              Effect.flatMap(execute)
            )
          }))
      })

    /** Runs an execution in the job's scope; its end settles the job unless it was stopped on purpose. */
    const start = (restored: Snapshot | undefined): Effect.Effect<void> =>
      Effect.gen(function*() {
        status = "running"
        const run = execute(restored).pipe(
          // The last counts of an execution reach the Effect metrics too.
          Effect.onExit((exit) =>
            Effect.andThen(sample, () => {
              if (status === "suspended" || status === "restarting") return Effect.void
              if (Exit.isSuccess(exit)) {
                status = "completed"
                return Deferred.succeed(outcome, undefined)
              }
              if (Cause.hasInterruptsOnly(exit.cause)) {
                status = "cancelled"
                return Deferred.fail(outcome, new JobCancelledError({ job: name }))
              }
              status = "failed"
              remember(exceptions, { time: Date.now(), message: Cause.pretty(exit.cause), restarted: false })
              return Deferred.failCause(outcome, exit.cause as Cause.Cause<E | JobError>)
            })
          )
        )
        fiber = yield* Effect.forkIn(Effect.provideContext(run, context) as Effect.Effect<void, unknown>, scope)
      })

    const stateError = (reason: string): Effect.Effect<never, JobStateError> => Effect.fail(new JobStateError({ job: name, reason }))

    /**
     * Asks the running execution for a snapshot and waits until it is complete.
     * A terminal one (sources stop after it) waits for one in flight to finish first.
     */
    const snapshotNow = (terminal: boolean) =>
      Effect.suspend(() => {
        const c = coordinator
        if (!c) return stateError("snapshots need processingGuarantee at-least-once or exactly-once")
        if (status !== "running") return stateError(`the job is ${status}`)
        let target = 0
        const asked = () => {
          if (target === 0 && (c.request(terminal) || !terminal)) target = c.requested
          return target > 0
        }
        asked()
        return Effect.andThen(
          Effect.repeat(Effect.sleep(5), { until: () => (asked() && c.completed >= target) || status !== "running" }),
          Effect.suspend(() => (target > 0 && c.completed >= target ? Effect.void : stateError(`the job ended (${status}) before the snapshot completed`)))
        )
      })

    const stop = (next: JobStatus) =>
      Effect.suspend(() => {
        status = next
        return fiber ? Fiber.interrupt(fiber) : Effect.void
      })

    // Rates come from the last two samples; each sample also publishes the Effect metrics.
    const interval = integer("metricsInterval", Duration.toMillis(options.metricsInterval ?? "1 second"), 1)
    let samples: Array<{ readonly time: number; readonly counts: ReadonlyArray<Sampled> }> = []
    const none: Sampled = [0, 0, 0, 0, 0]
    const rate = (index: number): Sampled => {
      const [a, b] = samples
      if (!a || !b) return none
      const before = a.counts[index] ?? none
      const after = b.counts[index] ?? none
      // A restart between the samples starts the counters again: no rate rather than a negative one.
      if (after.some((n, k) => n < before[k]!)) return none
      const seconds = (b.time - a.time) / 1000
      return after.map((n, k) => (n - before[k]!) / seconds) as unknown as Sampled
    }
    const readMetrics = (): JobMetrics => {
      const time = Date.now()
      return { time, instances: current.metrics(time, rate), restarts, snapshots: [...snapshots], exceptions: [...exceptions] }
    }
    const published = new Map<string, InstanceMetrics>()
    const sample = Effect.suspend(() => {
      if (options.metrics === false) return Effect.void
      const metrics = readMetrics()
      samples = [...samples.slice(-1), { time: metrics.time, counts: current.sampled() }]
      return Telemetry.publish(name, metrics, published)
    })
    if (options.metrics !== false) yield* Effect.forkIn(Effect.forever(Effect.andThen(Effect.sleep(interval), sample)), scope)
    yield* start(initial)
    const self: Job<E> = {
      id,
      name,
      status: Effect.sync(() => status),
      metrics: Effect.sync(readMetrics),
      summary: Effect.map(Clock.currentTimeMillis, (now) => summarize(name, readMetrics(), now - started)),
      cancel: Effect.suspend(() => {
        if (status === "completed" || status === "failed" || status === "cancelled") return Effect.void
        return Effect.andThen(stop("cancelled"), Deferred.fail(outcome, new JobCancelledError({ job: name })))
      }),
      join: Deferred.await(outcome),
      suspend: Effect.andThen(snapshotNow(true), stop("suspended")),
      resume: Effect.suspend((): Effect.Effect<void, JobStateError | SnapshotError> =>
        status !== "suspended"
          ? stateError(`only a suspended job can resume; it is ${status}`)
          : Effect.flatMap(latest, start)
      ),
      restart: Effect.suspend((): Effect.Effect<void, JobStateError | SnapshotError> =>
        status !== "running"
          ? stateError(`only a running job can restart; it is ${status}`)
          : Effect.andThen(stop("restarting"), Effect.flatMap(latest, start))
      ),
      exportSnapshot: (exportName) =>
        Effect.andThen(
          // A suspended job's final snapshot is exported as it is.
          Effect.suspend(() => (status === "suspended" ? Effect.void : snapshotNow(false))),
          Effect.flatMap(latest, (snapshot): Effect.Effect<void, SnapshotError | JobStateError> =>
            snapshot
              ? Effect.provideContext(store.save({ ...snapshot, job: exportName }), context) as Effect.Effect<void, SnapshotError>
              : stateError("no snapshot to export"))
        ),
      deleteSnapshot: (exportName) =>
        Effect.suspend((): Effect.Effect<void, JobStateError | SnapshotError> => {
          if (exportName === name) return stateError(`"${name}" names the job's own snapshots, kept by its retention`)
          const remove = Effect.flatMap(store.ids(exportName), (ids): Effect.Effect<void, JobStateError | SnapshotError, any> =>
            ids.length === 0 ? stateError(`no snapshot exported as "${exportName}"`) : SnapshotStore.clear(store, exportName))
          return Effect.provideContext(remove, context) as Effect.Effect<void, JobStateError | SnapshotError>
        }),
      stop: (stopOptions) =>
        Effect.suspend((): Effect.Effect<void, E | JobError | JobStateError | SnapshotError> => {
          if (stopOptions?.drain === false) return self.suspend
          if (status !== "running") return stateError(`only a running job can stop with drain; it is ${status}`)
          draining = true
          current.drain()
          return Deferred.await(outcome)
        })
    }
    const registry = yield* Jobs.Current
    if (registry) {
      // Listed while its handle lives: the scope that ends the job takes it off the list.
      registry.set(id, { job: self as Job<unknown>, graph: Jobs.graphOf(dag) })
      yield* Effect.addFinalizer(() => Effect.sync(() => registry.delete(id)))
    }
    return self
  })

export interface RunOptions extends JobOptions {
  /** Neither progress nor summary on the terminal. */
  readonly quiet?: boolean | undefined
  /** The progress line on a terminal (default true; never when standard error is not a terminal). */
  readonly progress?: boolean | undefined
}

/** Is standard error a terminal (where a summary is for a person, not a log)? */
const stderrIsTTY = (): boolean => (globalThis as any).process?.stderr?.isTTY === true

/**
 * Runs a job to its end (bounded input), releases its resources and returns
 * its summary: records read and written, late events, dead letters, duration.
 * The summary is also printed on standard error when that is a terminal and
 * `quiet` is not set (a log or a test's output gets none).
 */
export const run = <E, R>(pipeline: Pipeline<E, R>, options?: RunOptions): Effect.Effect<JobSummary, E | JobError | SnapshotError, R> =>
  Effect.scoped(Effect.gen(function*() {
    const job = yield* submit(pipeline, options)
    const terminal = !options?.quiet && stderrIsTTY()
    if (!terminal || options?.progress === false) yield* job.join
    else {
      const stderr = (globalThis as any).process.stderr
      let frame = 0
      const draw = Effect.flatMap(Effect.zip(job.metrics, job.summary), ([metrics, { duration }]) =>
        Effect.sync(() => stderr.write(`\r${Progress.line(metrics, duration, frame++)}\x1b[K`)))
      const bar = yield* Effect.forkScoped(Effect.forever(Effect.andThen(draw, Effect.sleep(100))))
      // The last line shows where the job ended (100 % when the sources knew their totals).
      yield* Effect.ensuring(job.join, Effect.andThen(Fiber.interrupt(bar), Effect.andThen(draw, Effect.sync(() => stderr.write("\n")))))
    }
    const summary = yield* job.summary
    if (terminal) yield* Console.error(formatSummary(summary))
    return summary
  }))

export interface StreamOptions extends JobOptions {
  /** Records the job may write ahead of the stream's consumer (default: `batchSize`, else 1024). */
  readonly bufferSize?: number | undefined
}

/**
 * Runs a job whose `Sinks.stream()` sinks feed the returned stream, in chunks
 * of their batches. The job starts when the stream is run and lives in its
 * scope: a consumer that stops (`Stream.take`, an interrupted fiber) cancels
 * the job and releases its resources. Between the sinks and the consumer is a
 * bounded buffer, so a slow consumer holds the job back (backpressure). The
 * stream ends when the job completes and fails with what failed the job.
 * Records reach the stream as they are written: after a restart from a
 * snapshot, the ones written since then come again (at-least-once).
 */
export const stream = <E, R>(
  pipeline: Pipeline<E, R>,
  options: StreamOptions = {}
): Stream.Stream<StreamOutputOf<R>, E | JobError | SnapshotError, Exclude<R, StreamOutput<any>>> =>
  Stream.unwrap(Effect.gen(function*() {
    const capacity = yield* Effect.try({
      try: () => integer("bufferSize", options.bufferSize, options.batchSize ?? 1024),
      catch: (e) => e as PlanError
    })
    const queue = yield* Queue.bounded<StreamOutputOf<R>, E | JobError | SnapshotError | Cause.Done>(capacity)
    const job = yield* Effect.provideService(submit(pipeline, options), StreamOutput, queue)
    yield* Effect.forkScoped(Effect.flatMap(Effect.exit(job.join), (exit) =>
      Exit.isSuccess(exit) ? Queue.end(queue) : Queue.failCause(queue, exit.cause)))
    return Stream.fromQueue(queue)
  })) as Stream.Stream<StreamOutputOf<R>, E | JobError | SnapshotError, Exclude<R, StreamOutput<any>>>
