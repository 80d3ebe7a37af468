/**
 * One job's coordinator: deploys executions on members, drives the snapshot
 * protocol with a processing guarantee (members acknowledge, it stores each
 * complete snapshot and orders the commits), and survives its members: one
 * that dies or fails makes it cancel the execution on the others and deploy a
 * new one on the members left, from the last complete snapshot; a member that
 * joins is used after `scaleUpDelay`, and a member shut down gracefully leaves
 * after a terminal snapshot — both redeploy from that snapshot, so nothing is
 * replayed twice. What carries its messages (pipes to child processes, links
 * to the members of a cluster) is the caller's: it feeds `events`.
 */
import {
  Coordinator,
  type Guarantee,
  type InstanceMetrics,
  type JobException,
  type JobMetrics,
  type ManagementJobs,
  remember,
  RestartPolicy,
  type Snapshot,
  type SnapshotInfo,
  SnapshotStore
} from "@tributary/core"
import { Cause, Clock, Data, Deferred, type Duration, Effect, Queue, Scope } from "effect"
import type { FromMember, ToMember } from "./Protocol.ts"

/** A member process failed or died and the job could not go on without it. */
export class MemberError extends Data.TaggedError("MemberError")<{
  readonly member: number
  readonly reason: string
}> {
  override get message() {
    return `member ${this.member}: ${this.reason}`
  }
}

/** The coordinator could not go on (its snapshot store failed, ...) and restarts are used up. */
export class CoordinatorError extends Data.TaggedError("CoordinatorError")<{
  readonly reason: string
}> {
  override get message() {
    return `coordinator: ${this.reason}`
  }
}

/** An operation on the job that its state or options do not allow. */
export class ClusterStateError extends Data.TaggedError("ClusterStateError")<{
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

/** A member for a job: `active` runs its current execution; `joining` waits to be used; `left`: shut down; `dead`: died. */
export type MemberState = "active" | "joining" | "left" | "dead"

/** A member as the coordinator sees it. */
export interface Member {
  readonly index: number
  /** Where its links listen. */
  readonly host: string
  readonly port: number
  /** Its process id, where known (a local cluster's child). */
  readonly pid: number | undefined
  readonly send: (message: ToMember) => Effect.Effect<void>
  /** Whether the process is there, whatever the jobs it runs (several may share it). */
  state: "up" | "left" | "dead"
}

export type Event =
  | { readonly _tag: "Message"; readonly member: Member; readonly message: FromMember }
  | { readonly _tag: "Exited"; readonly member: Member; readonly reason: string }
  /** `member`, already among the members, may be used from now on. */
  | { readonly _tag: "Joined"; readonly member: Member }
  | { readonly _tag: "Tick" }
  | { readonly _tag: "Rescale" }
  /** The operator cancels the job: its execution stops, and the job ends as cancelled. */
  | { readonly _tag: "Cancel" }
  /** The operator stops the job with drain: it ends as a bounded job does, every window closed and committed. */
  | { readonly _tag: "Drain" }
  /** The operator restarts the job from its last complete snapshot. */
  | { readonly _tag: "Restart"; readonly done: Deferred.Deferred<void, ClusterStateError> }
  /** This coordinator stops (its singleton moves): it leaves the job at a terminal snapshot for its successor. */
  | { readonly _tag: "HandOver" }
  | {
    readonly _tag: "Shutdown"
    readonly index: number
    readonly done: Deferred.Deferred<void, ClusterStateError>
    /**
     * The job goes on without the member (whoever asked sends it Exit once `done`); with
     * `handOver` the member runs this coordinator: stop after the terminal snapshot instead,
     * and let the successor resume from it.
     */
    readonly handOver?: boolean | undefined
  }

/** How a job spread over members runs: what a local cluster and a submission to a cluster take. */
export interface JobSettings {
  /** Path or URL of the module that exports the pipeline, as the members see it. */
  readonly module: string
  /** Its export holding the pipeline (default "pipeline"). */
  readonly export?: string | undefined
  /**
   * Instances of each vertex per member (default 1). Sources keep the count they
   * start with (their positions belong to their slices of input) wherever members
   * come and go; every other vertex is rescaled with the members.
   */
  readonly parallelism?: number | undefined
  /** `none` (default): a member's failure fails the job. Otherwise it restarts from the last snapshot. */
  readonly processingGuarantee?: Guarantee | undefined
  /** Time between snapshots (default 10 seconds). */
  readonly snapshotInterval?: Duration.Input | undefined
  /** When a member's failure or death restarts the job and when it fails it (default: 10 failures within 5 minutes). */
  readonly restartPolicy?: RestartPolicy.RestartPolicy | undefined
  /** Shorthand for `restartPolicy: RestartPolicy.maxRestarts(n)`: `n` failures in all, however far apart. */
  readonly maxRestarts?: number | undefined
  /** How long a joined member waits before the job is rescaled onto it (default 10 seconds). */
  readonly scaleUpDelay?: Duration.Input | undefined
}

export interface JobCoordinatorOptions {
  /** The job's name, under which its snapshots are stored. */
  readonly name: string
  readonly module: string
  readonly export: string
  readonly guarantee: Exclude<Guarantee, "none"> | undefined
  readonly store: SnapshotStore.SnapshotStore
  /** Instances of each vertex per member. */
  readonly parallelism: number
  /** Instances of each source, fixed while members come and go. */
  readonly sourceParallelism: number
  readonly restartPolicy: RestartPolicy.RestartPolicy
  readonly snapshotInterval: Duration.Input
  readonly scaleUpDelay: Duration.Input
  /**
   * The number of the next execution, unique among all the jobs on these members and growing
   * (a coordinator taking over continues past its predecessor's), so a member never takes an
   * old execution's link or message for a new one's.
   */
  readonly nextExecution: Effect.Effect<number, unknown>
  /** Start from the job's latest snapshot (a coordinator taking over a running job). */
  readonly resume?: boolean | undefined
  /** Where the snapshots and failures are recorded: the caller keeps them past this coordinator (a suspended job shows them). */
  readonly history?: History | undefined
}

/** A job's snapshots and failures, newest last. */
export interface History {
  readonly snapshots: Array<SnapshotInfo>
  readonly exceptions: Array<JobException>
}

export interface ClusterStatus {
  /** The current execution's number: one per deployment (the first, restarts, rescales). */
  readonly execution: number
  /** The newest complete snapshot (0: none yet). */
  readonly snapshot: number
  readonly restarts: number
  /** Whether the operator cancelled the job. */
  readonly cancelled: boolean
  readonly members: ReadonlyArray<{ readonly index: number; readonly pid: number | undefined; readonly state: MemberState }>
}

export interface JobCoordinator {
  /** Waits for the end of a bounded job, failing with what failed it. */
  readonly join: Effect.Effect<void, MemberError | CoordinatorError>
  readonly status: Effect.Effect<ClusterStatus>
  /** The counters the members of the current execution last reported, its snapshots and failures. */
  readonly metrics: Effect.Effect<JobMetrics>
  /** The job's graph, once a member reported it. */
  readonly graph: () => ManagementJobs.Graph | undefined
  /** Stops the execution; the job ends as cancelled. */
  readonly cancel: Effect.Effect<void>
  /** Stops with drain (Flink's `stop --drain`): the sources stop, every window closes, the sinks commit; waits for the end. */
  readonly drain: Effect.Effect<void, MemberError | CoordinatorError>
  /** Redeploys the job from its last complete snapshot (needs a processing guarantee). */
  readonly restart: Effect.Effect<void, ClusterStateError>
  /** Shuts a member down after a terminal snapshot and goes on without it (needs a processing guarantee). */
  readonly shutdownMember: (index: number) => Effect.Effect<void, ClusterStateError>
  /**
   * Stops driving the job at a terminal snapshot (and cancels the execution), for a successor to
   * resume from; false if the job ended first.
   */
  readonly handOver: Effect.Effect<boolean>
}

/** Runs the job on `members` (more join through `events`) until it ends or the scope closes. */
export const start = (
  options: JobCoordinatorOptions,
  members: Array<Member>,
  events: Queue.Queue<Event>
): Effect.Effect<JobCoordinator, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const { name, guarantee, store, restartPolicy } = options
    const send = (member: Member, message: ToMember) => (member.state === "dead" ? Effect.void : member.send(message))
    let execution = 0
    let participants: Array<Member> = []
    // Members this job has let go of (a graceful shutdown), not to be deployed on again.
    const released = new Set<Member>()
    const usable = (m: Member) => m.state === "up" && !released.has(m)
    let coordinator: Coordinator | undefined
    let restarts = 0
    let cancelled = false
    // Once asked, every execution (a redeployment after a failure too) is told to drain.
    let draining = false
    const { snapshots, exceptions } = options.history ?? { snapshots: [], exceptions: [] }
    // Each participant's latest counters, for the current execution.
    const reported = new Map<Member, ReadonlyArray<InstanceMetrics>>()
    let graph: ManagementJobs.Graph | undefined
    let failures: RestartPolicy.Failures = []
    let change: Extract<Event, { _tag: "Rescale" | "Shutdown" | "HandOver" }> | undefined
    // Members whose tasklets all ended / whose execution finished.
    const ended = new Set<Member>()
    const finished = new Set<Member>()
    const outcome = yield* Deferred.make<void, MemberError | CoordinatorError>()
    // Done once this coordinator stopped driving the job at a terminal snapshot, for a successor.
    const handedOver = yield* Deferred.make<void>()
    // Events that arrived while the coordinator waited for the members' replies, handled next.
    const backlog: Array<Event> = []
    const nextEvent = Effect.suspend(() => (backlog.length > 0 ? Effect.succeed(backlog.shift()!) : Queue.take(events)))

    /** Waits for `tag` from every living participant of the current execution, keeping other events for later. */
    const replies = <T extends FromMember["_tag"]>(tag: T) =>
      Effect.gen(function*() {
        const got = new Map<Member, Extract<FromMember, { _tag: T }>>()
        const deferred: Array<Event> = []
        const failed = new Set<Member>()
        while (participants.some((m) => m.state === "up" && !got.has(m) && !failed.has(m))) {
          const event = yield* nextEvent
          const message = event._tag === "Message" && "execution" in event.message && event.message.execution === execution ? event.message : undefined
          if (message?._tag === tag) {
            got.set((event as { member: Member }).member, message as Extract<FromMember, { _tag: T }>)
            continue
          }
          // A member that failed or died will not answer; what to do about it is decided afterwards.
          if (message?._tag === "Failed") failed.add((event as { member: Member }).member)
          if (event._tag === "Exited") event.member.state = "dead"
          deferred.push(event)
        }
        backlog.unshift(...deferred)
        return got
      })

    const snapshotNow = (terminal: boolean) =>
      Effect.suspend(() => {
        const c = coordinator
        if (!c || !c.request(terminal)) return Effect.void
        return Effect.forEach(participants, (m) => send(m, { _tag: "Snapshot", execution, id: c.requested, terminal }), { discard: true })
      })

    /** Deploys a new execution on the active and joining members, from `restored`. */
    const deploy = (restored: Snapshot | undefined) =>
      Effect.gen(function*() {
        execution = yield* options.nextExecution
        ended.clear()
        finished.clear()
        reported.clear()
        participants = members.filter(usable)
        const peers = participants.map((m) => [m.host, m.port] as const)
        yield* Effect.forEach(participants, (m, member) =>
          send(m, {
            _tag: "Deploy",
            execution,
            job: name,
            module: options.module,
            export: options.export,
            member,
            peers,
            parallelism: options.parallelism * participants.length,
            sourceParallelism: options.sourceParallelism,
            guarantee,
            restored
          }), { discard: true })
        if (draining) yield* Effect.forEach(participants, (m) => send(m, { _tag: "Drain", execution }), { discard: true })
        const deployed = yield* replies("Deployed")
        const tasklets = [...deployed.values()].reduce((n, d) => n + d.tasklets, 0)
        coordinator = guarantee && new Coordinator(name, store, tasklets, guarantee, restored?.id ?? 0, SnapshotStore.DEFAULT_RETAINED, snapshots)
      })

    /** Cancels the current execution on its living participants and waits until they stopped. */
    const cancel = Effect.gen(function*() {
      yield* Effect.forEach(participants, (m) => send(m, { _tag: "Cancel", execution }), { discard: true })
      yield* replies("Cancelled")
    })

    /** The execution cannot go on (because of `member`, or of the coordinator): start another from the last snapshot, or fail the job. */
    /**
     * The member to blame for `member`'s failure: a member that failed because its link to
     * another closed usually saw that other one die; its exit, if it comes within a second, is
     * the cause a user needs named. Other events wait for later.
     */
    const rootCause = (member: Member, reason: string, linkClosed: boolean) =>
      Effect.gen(function*() {
        if (!linkClosed) return { member, reason }
        const deferred: Array<Event> = []
        const exited = yield* Effect.timeoutOption(
          Effect.gen(function*() {
            while (true) {
              const event = yield* nextEvent
              if (event._tag === "Exited" && event.member !== member) return event
              deferred.push(event)
            }
          }),
          "1 second"
        )
        backlog.unshift(...deferred)
        if (exited._tag === "None") return { member, reason }
        exited.value.member.state = "dead"
        return { member: exited.value.member, reason: exited.value.reason }
      })

    const restart = (member: Member | undefined, reason: string, linkClosed = false) =>
      Effect.gen(function*() {
        const counted = guarantee && members.some(usable) ? RestartPolicy.onFailure(failures, restartPolicy, yield* Clock.currentTimeMillis) : undefined
        if (!counted) {
          remember(exceptions, { time: Date.now(), message: reason, restarted: false })
          if (!member) return yield* new CoordinatorError({ reason })
          const blamed = yield* rootCause(member, reason, linkClosed)
          return yield* new MemberError({ member: blamed.member.index, reason: blamed.reason })
        }
        failures = counted
        restarts++
        remember(exceptions, { time: Date.now(), message: reason, restarted: true })
        yield* Effect.logWarning(`${member ? `member ${member.index}` : "coordinator"}: ${reason}; restarting from the last snapshot`)
        yield* cancel
        yield* Effect.sleep(RestartPolicy.delayBefore(restartPolicy, counted))
        yield* deploy(yield* SnapshotStore.recover(store, name, coordinator?.completed ?? 0))
      })

    /** A step of the snapshot protocol here (storing, committing): its failure restarts the execution. */
    const coordinated = (step: Effect.Effect<void, unknown, any>) =>
      Effect.catchCause(step, (cause) => restart(undefined, Cause.pretty(cause)))

    const onMessage = (member: Member, message: FromMember) =>
      Effect.gen(function*() {
        if (!("execution" in message) || message.execution !== execution) return false
        const c = coordinator
        switch (message._tag) {
          case "Register": {
            const at = execution
            c?.register(message.tasklet, (id) => send(member, { _tag: "Commit", execution: at, tasklet: message.tasklet, id }))
            break
          }
          case "Ack":
            yield* coordinated(c!.ack(message.id, message.tasklet, message.contribution))
            break
          case "Done":
            yield* coordinated(c!.done(message.tasklet, message.contribution))
            break
          case "Ended":
            ended.add(member)
            if (ended.size === participants.length) {
              yield* coordinated(c!.finish())
              yield* Effect.forEach(participants, (m) => send(m, { _tag: "Finish", execution }), { discard: true })
            }
            break
          case "Metrics":
            reported.set(member, message.instances)
            graph ??= message.graph
            break
          case "Finished":
            finished.add(member)
            return finished.size === participants.length
          case "Failed":
            yield* restart(member, message.reason, message.linkClosed ?? false)
            break
        }
        return false
      })

    /** A rescale, a shutdown or a hand-over waits for a terminal snapshot, then redeploys from it (or stops, for a hand-over). */
    const advanceChange = Effect.gen(function*() {
      const c = coordinator
      if (!change || !c) return
      if (c.terminal === 0) return yield* snapshotNow(true)
      if (c.completed < c.terminal) return
      yield* cancel
      if (change._tag === "Shutdown") {
        const { index } = change
        released.add(members.find((m) => m.index === index)!)
        yield* Deferred.succeed(change.done, undefined)
        if (change.handOver) return yield* Effect.andThen(Deferred.succeed(handedOver, undefined), Effect.never)
      }
      if (change._tag === "HandOver") return yield* Effect.andThen(Deferred.succeed(handedOver, undefined), Effect.never)
      change = undefined
      yield* deploy(yield* SnapshotStore.recover(store, name, c.completed))
    })

    const loop = Effect.gen(function*() {
      yield* deploy(options.resume ? yield* SnapshotStore.recover(store, name, 0) : undefined)
      while (true) {
        const event = yield* nextEvent
        switch (event._tag) {
          case "Tick":
            if (!change) yield* snapshotNow(false)
            break
          case "Joined":
            yield* Effect.forkIn(Effect.andThen(Effect.sleep(options.scaleUpDelay), Queue.offer(events, { _tag: "Rescale" })), scope)
            break
          case "Cancel":
            cancelled = true
            yield* cancel
            if (change?._tag === "Shutdown") yield* Deferred.succeed(change.done, undefined)
            return
          case "Drain":
            draining = true
            yield* Effect.forEach(participants, (m) => send(m, { _tag: "Drain", execution }), { discard: true })
            break
          case "Restart":
            if (!guarantee) yield* Deferred.fail(event.done, new ClusterStateError({ reason: "a restart from a snapshot needs a processing guarantee" }))
            else if (change) yield* Deferred.fail(event.done, new ClusterStateError({ reason: `the job is busy (${change._tag})` }))
            else {
              yield* cancel
              yield* deploy(yield* SnapshotStore.recover(store, name, coordinator?.completed ?? 0))
              yield* Deferred.succeed(event.done, undefined)
            }
            break
          case "Rescale":
            if (members.some((m) => usable(m) && !participants.includes(m))) change ??= event
            break
          case "HandOver":
            // Takes precedence: nothing else will be done by this coordinator.
            if (change?._tag === "Shutdown") yield* Deferred.fail(change.done, new ClusterStateError({ reason: "the coordinator is moving" }))
            if (!guarantee) yield* Deferred.succeed(handedOver, undefined)
            else change = event
            break
          case "Shutdown": {
            const m = members.find((m) => m.index === event.index)
            const active = m !== undefined && usable(m) && participants.includes(m)
            if (!active || !participants.some((p) => p !== m && usable(p))) {
              const reason = active ? "it is the last active member" : "it is not active"
              yield* Deferred.fail(event.done, new ClusterStateError({ reason: `member ${event.index} cannot shut down: ${reason}` }))
            } else if (change) backlog.push(event)
            else change = event
            break
          }
          case "Exited":
            if (event.member.state === "left") break
            event.member.state = "dead"
            if (participants.includes(event.member)) yield* restart(event.member, event.reason)
            break
          case "Message":
            if (yield* onMessage(event.member, event.message)) {
              if (change?._tag === "Shutdown") yield* Deferred.succeed(change.done, undefined)
              return
            }
            break
        }
        yield* advanceChange
      }
    })

    if (guarantee) {
      yield* Effect.forkIn(Effect.forever(Effect.andThen(Effect.sleep(options.snapshotInterval), Queue.offer(events, { _tag: "Tick" }))), scope)
    }
    // The snapshot store's services (a file system for a directory store, ...).
    const context = yield* Effect.context<never>()
    yield* Effect.forkIn(
      Effect.exit(Effect.provideContext(loop, context)).pipe(Effect.flatMap((exit) => Deferred.done(outcome, exit as any))),
      scope
    )
    return {
      join: Deferred.await(outcome),
      status: Effect.sync(() => ({
        execution,
        snapshot: coordinator?.completed ?? 0,
        restarts,
        cancelled,
        members: members.map((m) => ({
          index: m.index,
          pid: m.pid,
          state: m.state === "up" ? (released.has(m) ? "left" : participants.includes(m) ? "active" : "joining") : m.state
        }))
      })),
      metrics: Effect.sync(() => ({
        time: Date.now(),
        instances: participants.flatMap((m) => reported.get(m) ?? []),
        restarts,
        snapshots: [...snapshots],
        exceptions: [...exceptions]
      })),
      graph: () => graph,
      cancel: Effect.andThen(Queue.offer(events, { _tag: "Cancel" }), Effect.ignore(Deferred.await(outcome))),
      drain: Effect.andThen(Queue.offer(events, { _tag: "Drain" }), Deferred.await(outcome)),
      restart: Effect.gen(function*() {
        const done = yield* Deferred.make<void, ClusterStateError>()
        yield* Queue.offer(events, { _tag: "Restart", done })
        yield* Effect.raceFirst(Deferred.await(done), Effect.ignore(Deferred.await(outcome)))
      }),
      // Returns at once if the job has ended or was handed over already.
      handOver: Effect.andThen(
        Queue.offer(events, { _tag: "HandOver" }),
        Effect.raceFirst(Effect.as(Deferred.await(handedOver), true), Effect.as(Effect.ignore(Deferred.await(outcome)), false))
      ),
      shutdownMember: (index) =>
        Effect.gen(function*() {
          if (!guarantee) return yield* new ClusterStateError({ reason: "a graceful shutdown needs a processing guarantee" })
          const done = yield* Deferred.make<void, ClusterStateError>()
          yield* Queue.offer(events, { _tag: "Shutdown", index, done })
          yield* Deferred.await(done)
        })
    }
  })
