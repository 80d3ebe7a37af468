/**
 * Every core of this machine: runs a pipeline over member processes on
 * 127.0.0.1 that exchange batches over authenticated, flow-controlled links.
 * Each member imports the module that exports the pipeline (functions do not
 * travel between processes; the module does) and runs the executions this
 * process, the job's coordinator, deploys on it.
 *
 * With a processing guarantee the coordinator drives the snapshots (members
 * acknowledge, it stores each complete one and orders the commits) and
 * survives its members: a member that dies or fails makes it cancel the
 * execution on the others and deploy a new one on the members left, from the
 * last complete snapshot; a member that joins is used after `scaleUpDelay`,
 * and a member shut down gracefully leaves after a terminal snapshot — both
 * redeploy from that snapshot, so nothing is replayed twice.
 */
import { Coordinator, type Guarantee, SnapshotStore, type Snapshot } from "@tributary/core"
import { Cause, Data, Deferred, Duration, Effect, Queue, Scope } from "effect"
import * as Process from "../platform/Process.ts"
import type { FromMember, ToMember } from "./Protocol.ts"

export interface LocalClusterOptions {
  /** Path or URL of the module that exports the pipeline. */
  readonly module: string
  /** Its export holding the pipeline (default "pipeline"). */
  readonly export?: string | undefined
  /** Member processes to start with (default: the number of cores). */
  readonly members?: number | undefined
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
  /** Where the coordinator keeps snapshots (default: the `SnapshotStore.layer` provided, else in memory). */
  readonly snapshotStore?: SnapshotStore.SnapshotStore | undefined
  /** Restarts after failures before the job fails for good (default 10). */
  readonly maxRestarts?: number | undefined
  /** How long a joined member waits before the job is rescaled onto it (default 10 seconds). */
  readonly scaleUpDelay?: Duration.Input | undefined
  /** The job's name, under which its snapshots are stored (default "local-cluster-job"). */
  readonly name?: string | undefined
}

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

/** An operation on the cluster job that its state or options do not allow. */
export class ClusterStateError extends Data.TaggedError("ClusterStateError")<{
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

/** `active`: runs the current execution; `joining`: waits to be used; `left`: shut down; `dead`: died. */
export type MemberState = "active" | "joining" | "left" | "dead"

export interface MemberStatus {
  readonly index: number
  readonly pid: number
  readonly state: MemberState
}

export interface ClusterStatus {
  /** Executions deployed so far: the first, then one per restart or rescale. */
  readonly executions: number
  /** The newest complete snapshot (0: none yet). */
  readonly snapshot: number
  readonly restarts: number
  readonly members: ReadonlyArray<MemberStatus>
}

/** A handle on a job running on a local cluster. */
export interface ClusterJob {
  /** Waits for the end of a bounded job, failing with what failed it. */
  readonly join: Effect.Effect<void, MemberError | CoordinatorError>
  readonly status: Effect.Effect<ClusterStatus>
  /** Starts one more member; the job is rescaled onto it after `scaleUpDelay` (needs a processing guarantee). */
  readonly addMember: Effect.Effect<number, Process.ProcessError | ClusterStateError>
  /** Shuts a member down after a terminal snapshot and goes on without it (needs a processing guarantee). */
  readonly shutdownMember: (index: number) => Effect.Effect<void, ClusterStateError>
}

interface Member {
  readonly index: number
  readonly child: Process.Child
  readonly port: number
  state: MemberState
}

type Event =
  | { readonly _tag: "Message"; readonly member: Member; readonly message: FromMember }
  | { readonly _tag: "Exited"; readonly member: Member; readonly reason: string }
  | { readonly _tag: "Tick" }
  | { readonly _tag: "Joined"; readonly member: Member }
  | { readonly _tag: "Rescale" }
  | { readonly _tag: "Shutdown"; readonly index: number; readonly done: Deferred.Deferred<void, ClusterStateError> }

// From the sources, src/local/member.ts; from a build, dist/member.js (an entry of its own).
const memberScript = decodeURIComponent(new URL(import.meta.url.endsWith(".ts") ? "./member.ts" : "./member.js", import.meta.url).pathname)

const randomSecret = () => Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("")

/** Starts the members and the job on them; the job is cancelled and its members stopped when the scope closes. */
export const start = (options: LocalClusterOptions): Effect.Effect<ClusterJob, Process.ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const secret = randomSecret()
    const name = options.name ?? "local-cluster-job"
    const guarantee = options.processingGuarantee === "none" ? undefined : options.processingGuarantee
    const store = options.snapshotStore ?? (yield* SnapshotStore.Current) ?? SnapshotStore.memory()
    const perMember = options.parallelism ?? 1
    const initialMembers = options.members ?? navigator.hardwareConcurrency
    const sourceParallelism = perMember * initialMembers
    const maxRestarts = options.maxRestarts ?? 10
    const events = yield* Queue.unbounded<Event>()
    const members: Array<Member> = []

    /** Starts member `index` and waits until it listens; its messages and its end become events. */
    const spawn = (index: number) =>
      Effect.gen(function*() {
        const child = yield* Process.spawn(`member ${index}`, memberScript, [options.module, options.export ?? "pipeline", String(index)], {
          TRIBUTARY_SECRET: secret
        })
        const hello = (yield* child.message) as FromMember
        const member: Member = { index, child, port: hello._tag === "Listening" ? hello.port : -1, state: "joining" }
        yield* Effect.forkIn(
          Effect.forever(Effect.flatMap(child.message, (message) => Queue.offer(events, { _tag: "Message", member, message: message as FromMember }))).pipe(
            Effect.catch(() =>
              Effect.flatMap(child.exit, ({ code, signal, stderr }) =>
                Queue.offer(events, { _tag: "Exited", member, reason: `exited (${signal ?? `code ${code}`}): ${stderr.trim().split("\n").slice(-3).join(" | ")}` })))
          ),
          scope
        )
        return member
      }).pipe(Scope.provide(scope))
    members.push(...(yield* Effect.forEach(Array.from({ length: initialMembers }, (_, i) => i), spawn, { concurrency: "unbounded" })))
    let nextIndex = initialMembers

    const send = (member: Member, message: ToMember) => (member.state === "dead" ? Effect.void : member.child.send(message))
    let execution = 0
    let participants: Array<Member> = []
    let coordinator: Coordinator | undefined
    let restarts = 0
    let change: Extract<Event, { _tag: "Rescale" | "Shutdown" }> | undefined
    // Members whose tasklets all ended / whose execution finished.
    const ended = new Set<Member>()
    const finished = new Set<Member>()
    // Events that arrived while the coordinator waited for the members' replies, handled next.
    const backlog: Array<Event> = []
    const nextEvent = Effect.suspend(() => (backlog.length > 0 ? Effect.succeed(backlog.shift()!) : Queue.take(events)))

    /** Waits for `tag` from every living participant of the current execution, keeping other events for later. */
    const replies = <T extends FromMember["_tag"]>(tag: T) =>
      Effect.gen(function*() {
        const got = new Map<Member, Extract<FromMember, { _tag: T }>>()
        const deferred: Array<Event> = []
        const failed = new Set<Member>()
        while (participants.some((m) => m.state === "active" && !got.has(m) && !failed.has(m))) {
          const event = yield* (backlog.length > 0 ? Effect.succeed(backlog.shift()!) : Queue.take(events))
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
        execution++
        ended.clear()
        finished.clear()
        participants = members.filter((m) => m.state === "active" || m.state === "joining")
        for (const m of participants) m.state = "active"
        const ports = participants.map((m) => m.port)
        yield* Effect.forEach(participants, (m, member) =>
          send(m, {
            _tag: "Deploy",
            execution,
            member,
            ports,
            parallelism: perMember * participants.length,
            sourceParallelism,
            guarantee,
            restored
          }), { discard: true })
        const deployed = yield* replies("Deployed")
        const tasklets = [...deployed.values()].reduce((n, d) => n + d.tasklets, 0)
        coordinator = guarantee && new Coordinator(name, store, tasklets, guarantee, restored?.id ?? 0)
      })

    /** Cancels the current execution on its living participants and waits until they stopped. */
    const cancel = Effect.gen(function*() {
      yield* Effect.forEach(participants, (m) => send(m, { _tag: "Cancel", execution }), { discard: true })
      yield* replies("Cancelled")
    })

    /** The execution cannot go on (because of `member`, or of the coordinator): start another from the last snapshot, or fail the job. */
    const restart = (member: Member | undefined, reason: string) =>
      Effect.gen(function*() {
        if (!guarantee || restarts >= maxRestarts || !members.some((m) => m.state === "active" || m.state === "joining")) {
          return yield* (member ? new MemberError({ member: member.index, reason }) : new CoordinatorError({ reason }))
        }
        restarts++
        yield* Effect.logWarning(`${member ? `member ${member.index}` : "coordinator"}: ${reason}; restarting from the last snapshot`)
        yield* cancel
        yield* deploy(yield* store.latest(name))
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
          case "Finished":
            finished.add(member)
            return finished.size === participants.length
          case "Failed":
            yield* restart(member, message.reason)
            break
        }
        return false
      })

    /** A rescale or a shutdown waits for a terminal snapshot, then redeploys from it. */
    const advanceChange = Effect.gen(function*() {
      const c = coordinator
      if (!change || !c) return
      if (c.terminal === 0) return yield* snapshotNow(true)
      if (c.completed < c.terminal) return
      yield* cancel
      if (change._tag === "Shutdown") {
        const { index } = change
        const leaving = members.find((m) => m.index === index)!
        yield* send(leaving, { _tag: "Exit" })
        leaving.state = "left"
        yield* Deferred.succeed(change.done, undefined)
      }
      change = undefined
      yield* deploy(yield* store.latest(name))
    })

    const loop = Effect.gen(function*() {
      yield* deploy(undefined)
      while (true) {
        const event = yield* nextEvent
        switch (event._tag) {
          case "Tick":
            if (!change) yield* snapshotNow(false)
            break
          case "Joined":
            members.push(event.member)
            yield* Effect.forkIn(Effect.andThen(Effect.sleep(options.scaleUpDelay ?? "10 seconds"), Queue.offer(events, { _tag: "Rescale" })), scope)
            break
          case "Rescale":
            if (members.some((m) => m.state === "joining")) change ??= event
            break
          case "Shutdown": {
            const m = members.find((m) => m.index === event.index)
            if (!m || m.state !== "active" || !participants.some((p) => p !== m && p.state === "active")) {
              const reason = m?.state === "active" ? "it is the last active member" : "it is not active"
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
              yield* Effect.forEach(members, (m) => send(m, { _tag: "Exit" }), { discard: true })
              if (change?._tag === "Shutdown") yield* Deferred.succeed(change.done, undefined)
              return
            }
            break
        }
        yield* advanceChange
      }
    })

    const outcome = yield* Deferred.make<void, MemberError | CoordinatorError>()
    if (guarantee) {
      const interval = Duration.toMillis(options.snapshotInterval ?? "10 seconds")
      yield* Effect.forkIn(Effect.forever(Effect.andThen(Effect.sleep(interval), Queue.offer(events, { _tag: "Tick" }))), scope)
    }
    // The snapshot store's services (a file system for a directory store, ...).
    const context = yield* Effect.context<never>()
    yield* Effect.forkIn(
      Effect.exit(Effect.provideContext(loop, context)).pipe(Effect.flatMap((exit) => Deferred.done(outcome, exit as any))),
      scope
    )
    const needsGuarantee = (what: string) =>
      guarantee ? Effect.void : Effect.fail(new ClusterStateError({ reason: `${what} needs a processing guarantee` }))
    return {
      join: Deferred.await(outcome),
      status: Effect.sync(() => ({
        executions: execution,
        snapshot: coordinator?.completed ?? 0,
        restarts,
        members: members.map((m) => ({ index: m.index, pid: m.child.pid, state: m.state }))
      })),
      addMember: Effect.gen(function*() {
        yield* needsGuarantee("adding a member")
        const member = yield* spawn(nextIndex++)
        yield* Queue.offer(events, { _tag: "Joined", member })
        return member.index
      }),
      shutdownMember: (index) =>
        Effect.gen(function*() {
          yield* needsGuarantee("a graceful shutdown")
          const done = yield* Deferred.make<void, ClusterStateError>()
          yield* Queue.offer(events, { _tag: "Shutdown", index, done })
          yield* Deferred.await(done)
        })
    }
  })

/** Runs the job to its end on a local cluster and stops the members. */
export const run = (options: LocalClusterOptions): Effect.Effect<void, MemberError | CoordinatorError | Process.ProcessError> =>
  Effect.scoped(Effect.flatMap(start(options), (job) => job.join))
