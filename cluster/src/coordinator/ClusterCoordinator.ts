/**
 * The coordinator of a cluster, run as an effect/cluster singleton: exactly
 * one member runs it, and when that member dies the engine starts it on
 * another (after the dead runner's shard lock expires). It listens for
 * members and clients on an authenticated link, publishes where in the
 * registry, and runs each submitted job with a `JobCoordinator` of its own,
 * side by side on the same members. A coordinator that takes over finds the
 * running jobs in the registry and resumes them from their last snapshots on
 * the members that reconnect to it.
 */
import type { SnapshotStore } from "@tributary/core"
import { Cause, Deferred, Effect, Exit, Queue, Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as Link from "../link/Link.ts"
import * as JobCoordinator from "./JobCoordinator.ts"
import type { FromMember } from "./Protocol.ts"
import * as Registry from "./Registry.ts"

/** The first message on a link to the coordinator: a member joins, or a client submits a job. */
export type Hello =
  | { readonly _tag: "Join"; readonly host: string; readonly port: number }
  | { readonly _tag: "Submit"; readonly name: string; readonly module: string; readonly export: string; readonly options: Registry.JobOptions }

/** The coordinator's answer to a Submit. */
export type SubmitReply = { readonly _tag: "Accepted" } | { readonly _tag: "Rejected"; readonly reason: string }

export interface ClusterCoordinatorOptions {
  readonly cluster: string
  /** The interface its link listens on. */
  readonly host: string
  readonly secret: string
  readonly store: SnapshotStore.SnapshotStore
  /** Where the links of this process's own member listen (it leaves with the coordinator). */
  readonly ownMember: readonly [host: string, port: number]
  /** How many runners the cluster engine sees alive: the members to wait for before deploying. */
  readonly liveRunners: Effect.Effect<number, unknown>
}

/** Runs until interrupted (the singleton moves, the member stops). */
export const run = (options: ClusterCoordinatorOptions): Effect.Effect<never, unknown, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const { cluster, host, secret, store } = options
    const sql = yield* SqlClient.SqlClient
    const scope = yield* Effect.scope
    const listener = yield* Link.listen({ host, secret })
    const published = yield* Registry.publishCoordinator(cluster, host, listener.port)
    yield* Effect.logInfo(`cluster "${cluster}": coordinator (epoch ${published.epoch}) listens on ${host}:${listener.port}`)
    let executions = published.executions
    const members: Array<JobCoordinator.Member> = []
    // The running jobs' event queues, and which queue each current execution's messages go to.
    const jobs = new Map<string, Queue.Queue<JobCoordinator.Event>>()
    const owners = new Map<number, Queue.Queue<JobCoordinator.Event>>()
    const toEveryJob = (event: JobCoordinator.Event) => Effect.forEach(jobs.values(), (q) => Queue.offer(q, event), { discard: true })
    let nextIndex = 0

    const join = (link: Link.Link, hello: Extract<Hello, { _tag: "Join" }>) =>
      Effect.gen(function*() {
        const member: JobCoordinator.Member = {
          index: nextIndex++,
          host: hello.host,
          port: hello.port,
          pid: undefined,
          send: (message) => Effect.ignore(link.send([message])),
          state: "up"
        }
        members.push(member)
        yield* toEveryJob({ _tag: "Joined", member })
        yield* Effect.logInfo(`cluster "${cluster}": member ${member.index} joined from ${hello.host}:${hello.port}`)
        // Until the link fails: its messages go to the job of their execution; its failure means the member is gone.
        return yield* Effect.forever(Effect.flatMap(link.receive, (item) => {
          const message = (item as [FromMember])[0]
          if (message._tag === "Leave") return leave(member)
          const owner = "execution" in message ? owners.get(message.execution) : undefined
          return owner ? Queue.offer(owner, { _tag: "Message", member, message }) : Effect.void
        })).pipe(
          Effect.catchCause((cause) => {
            if (member.state === "up") member.state = "dead"
            return toEveryJob({ _tag: "Exited", member, reason: `its link to the coordinator failed: ${Cause.pretty(cause).split("\n")[0]}` })
          })
        )
      })

    /**
     * A member leaves gracefully: every running job goes on without it from a terminal snapshot
     * (when the coordinator leaves with it, its successor resumes them from those snapshots);
     * then it is told to exit.
     */
    const leave = (member: JobCoordinator.Member) =>
      Effect.forkDetach(Effect.gen(function*() {
        yield* Effect.logInfo(`cluster "${cluster}": member ${member.index} leaves`)
        const handOver = member.host === options.ownMember[0] && member.port === options.ownMember[1]
        yield* Effect.forEach(jobs.values(), (queue) =>
          Effect.gen(function*() {
            const done = yield* Deferred.make<void, JobCoordinator.ClusterStateError>()
            yield* Queue.offer(queue, { _tag: "Shutdown", index: member.index, done, handOver })
            // A job that does not run on it (or cannot do without it) lets it go at once.
            yield* Effect.ignore(Deferred.await(done))
          }), { concurrency: "unbounded", discard: true })
        member.state = "left"
        yield* member.send({ _tag: "Exit" })
      }))

    const submit = (link: Link.Link, hello: Extract<Hello, { _tag: "Submit" }>) =>
      Effect.gen(function*() {
        const added = yield* Registry.addJob(cluster, hello)
        const reply: SubmitReply = added ? { _tag: "Accepted" } : { _tag: "Rejected", reason: `a job named "${hello.name}" exists` }
        yield* link.send([reply])
        if (added) {
          const job = yield* Registry.job(cluster, hello.name)
          if (job) yield* startJob(job)
        }
      })

    // Each link in a scope of its own, open as long as its member (or its client's submission).
    const acceptOne = Effect.gen(function*() {
      const scope = yield* Scope.make()
      const link = yield* Scope.provide(listener.accept, scope)
      yield* Effect.forkDetach(Effect.gen(function*() {
        const hello = ((yield* link.receive) as [Hello])[0]
        if (hello._tag === "Join") yield* join(link, hello)
        else yield* submit(link, hello)
      }).pipe(Effect.ignore, Effect.ensuring(Scope.close(scope, Exit.void))))
    })
    yield* Effect.forkScoped(Effect.forever(acceptOne))

    /** Waits until every runner the cluster engine sees alive has joined (at most 5 s), and for one at least. */
    const membersReady = Effect.gen(function*() {
      const deadline = Date.now() + 5000
      while (true) {
        const alive = members.filter((m) => m.state === "up").length
        const runners = yield* Effect.orElseSucceed(options.liveRunners, () => 0)
        if (alive > 0 && (alive >= runners || Date.now() > deadline)) return
        yield* Effect.sleep("100 millis")
      }
    })

    /** Runs `job` beside the others until it ends, then records how it ended. */
    const startJob = (job: Registry.JobRow) =>
      Effect.forkIn(Effect.scoped(Effect.gen(function*() {
        const queue = yield* Queue.unbounded<JobCoordinator.Event>()
        jobs.set(job.name, queue)
        yield* Effect.addFinalizer(() => Effect.sync(() => jobs.delete(job.name)))
        yield* membersReady
        let sourceParallelism = job.sourceParallelism
        if (sourceParallelism === null) {
          sourceParallelism = job.options.parallelism * members.filter((m) => m.state === "up").length
          yield* Registry.fixSourceParallelism(cluster, job.name, sourceParallelism)
        }
        let current: number | undefined
        const coordinator = yield* JobCoordinator.start({
          name: job.name,
          module: job.module,
          export: job.export,
          guarantee: job.options.guarantee === "none" ? undefined : job.options.guarantee,
          store,
          parallelism: job.options.parallelism,
          sourceParallelism,
          maxRestarts: job.options.maxRestarts,
          snapshotInterval: job.options.snapshotIntervalMs,
          scaleUpDelay: job.options.scaleUpDelayMs,
          // A job that had started before (its sources fixed) continues from its last snapshot.
          resume: job.sourceParallelism !== null,
          nextExecution: Effect.suspend(() => {
            const execution = ++executions
            if (current !== undefined) owners.delete(current)
            owners.set((current = execution), queue)
            return Effect.as(Effect.provideService(Registry.recordExecution(cluster, execution), SqlClient.SqlClient, sql), execution)
          })
        }, members, queue)
        // When the singleton moves (the cluster rebalanced, the member stops), the successor
        // resumes from a terminal snapshot: nothing is replayed twice, even with at-least-once.
        yield* Effect.addFinalizer(() => Effect.ignore(Effect.timeout(coordinator.handOver, "10 seconds")))
        const exit = yield* Effect.exit(coordinator.join)
        if (current !== undefined) owners.delete(current)
        yield* Registry.endJob(cluster, job.name, Exit.isSuccess(exit) ? "completed" : "failed", Exit.isSuccess(exit) ? null : Cause.pretty(exit.cause))
        yield* Effect.logInfo(`cluster "${cluster}": job "${job.name}" ${Exit.isSuccess(exit) ? "completed" : "failed"}`)
      })).pipe(Effect.ignore), scope)

    // Jobs that were running when the previous coordinator stopped go on.
    yield* Effect.forEach(yield* Registry.runningJobs(cluster), startJob, { discard: true })
    return yield* Effect.never
  })
