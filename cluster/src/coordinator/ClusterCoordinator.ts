/**
 * The coordinator of a cluster, run as an effect/cluster singleton: exactly
 * one member runs it, and when that member dies the engine starts it on
 * another (after the dead runner's shard lock expires). It listens for
 * members and clients on an authenticated link, publishes where in the
 * registry, and runs the cluster's job — one at a time — with a
 * `JobCoordinator`. A coordinator that takes over finds the running job in the
 * registry and resumes it from its last snapshot on the members that
 * reconnect to it.
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
    const listener = yield* Link.listen({ host, secret })
    const published = yield* Registry.publishCoordinator(cluster, host, listener.port)
    yield* Effect.logInfo(`cluster "${cluster}": coordinator (epoch ${published.epoch}) listens on ${host}:${listener.port}`)
    let executions = published.executions
    const members: Array<JobCoordinator.Member> = []
    // The running job's events; undefined between jobs.
    let events: Queue.Queue<JobCoordinator.Event> | undefined
    const submitted = yield* Queue.unbounded<void>()
    let nextIndex = 0

    const join = (link: Link.Link, hello: Extract<Hello, { _tag: "Join" }>) =>
      Effect.gen(function*() {
        const member: JobCoordinator.Member = {
          index: nextIndex++,
          host: hello.host,
          port: hello.port,
          pid: undefined,
          send: (message) => Effect.ignore(link.send([message])),
          state: "joining"
        }
        if (events) yield* Queue.offer(events, { _tag: "Joined", member })
        else members.push(member)
        yield* Effect.logInfo(`cluster "${cluster}": member ${member.index} joined from ${hello.host}:${hello.port}`)
        // Until the link fails: its messages go to the running job; its failure means the member is gone.
        return yield* Effect.forever(Effect.flatMap(link.receive, (item) => {
          const message = (item as [FromMember])[0]
          if (message._tag === "Leave") return leave(member)
          return events ? Queue.offer(events, { _tag: "Message", member, message }) : Effect.void
        })).pipe(
            Effect.catchCause((cause) => {
              const reason = `its link to the coordinator failed: ${Cause.pretty(cause).split("\n")[0]}`
              if (events) return Queue.offer(events, { _tag: "Exited", member, reason })
              member.state = "dead"
              return Effect.void
            })
          )
      })

    /**
     * A member leaves gracefully: the running job goes on without it from a terminal snapshot
     * (when the coordinator leaves with it, its successor resumes from that snapshot).
     */
    const leave = (member: JobCoordinator.Member) =>
      Effect.gen(function*() {
        yield* Effect.logInfo(`cluster "${cluster}": member ${member.index} leaves`)
        const handOver = member.host === options.ownMember[0] && member.port === options.ownMember[1]
        const done = yield* Deferred.make<void, JobCoordinator.ClusterStateError>()
        if (events) yield* Queue.offer(events, { _tag: "Shutdown", index: member.index, done, handOver })
        else yield* Deferred.fail(done, new JobCoordinator.ClusterStateError({ reason: "no job is running" }))
        // Not part of the job (or the job cannot do without it): it leaves at once.
        yield* Effect.forkDetach(Effect.catch(Deferred.await(done), () => {
          member.state = "left"
          return member.send({ _tag: "Exit" })
        }))
      })

    const submit = (link: Link.Link, hello: Extract<Hello, { _tag: "Submit" }>) =>
      Effect.gen(function*() {
        const running = yield* Registry.runningJob(cluster)
        const added = running ? false : yield* Registry.addJob(cluster, hello)
        const reply: SubmitReply = added
          ? { _tag: "Accepted" }
          : { _tag: "Rejected", reason: running ? `job "${running.name}" is running` : `a job named "${hello.name}" exists` }
        yield* link.send([reply])
        if (added) yield* Queue.offer(submitted, undefined)
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
        const alive = members.filter((m) => m.state !== "dead" && m.state !== "left").length
        const runners = yield* Effect.orElseSucceed(options.liveRunners, () => 0)
        if (alive > 0 && (alive >= runners || Date.now() > deadline)) return
        yield* Effect.sleep("100 millis")
      }
    })

    const runJob = (job: Registry.JobRow) =>
      Effect.scoped(Effect.gen(function*() {
        yield* membersReady
        const alive = members.filter((m) => m.state !== "dead" && m.state !== "left")
        let sourceParallelism = job.sourceParallelism
        if (sourceParallelism === null) {
          sourceParallelism = job.options.parallelism * alive.length
          yield* Registry.fixSourceParallelism(cluster, job.name, sourceParallelism)
        }
        const queue = yield* Queue.unbounded<JobCoordinator.Event>()
        events = queue
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
          executionsBefore: executions,
          // A job that had started before (its sources fixed) continues from its last snapshot.
          resume: job.sourceParallelism !== null,
          onDeploy: (execution) => {
            executions = execution
            return Effect.asVoid(Effect.provideService(Registry.recordExecution(cluster, execution), SqlClient.SqlClient, sql))
          }
        }, members, queue)
        // When the singleton moves (the cluster rebalanced, the member stops), the successor
        // resumes from a terminal snapshot: nothing is replayed twice, even with at-least-once.
        yield* Effect.addFinalizer(() => Effect.ignore(Effect.timeout(coordinator.handOver, "10 seconds")))
        const exit = yield* Effect.exit(coordinator.join)
        events = undefined
        yield* Registry.endJob(cluster, job.name, Exit.isSuccess(exit) ? "completed" : "failed", Exit.isSuccess(exit) ? null : Cause.pretty(exit.cause))
        yield* Effect.logInfo(`cluster "${cluster}": job "${job.name}" ${Exit.isSuccess(exit) ? "completed" : "failed"}`)
      }))

    return yield* Effect.forever(Effect.gen(function*() {
      const job = yield* Registry.runningJob(cluster)
      if (job) yield* runJob(job)
      else yield* Queue.take(submitted)
    }))
  })
