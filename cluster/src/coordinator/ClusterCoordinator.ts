/**
 * The coordinator of a cluster, run as an effect/cluster singleton: exactly
 * one member runs it, and when that member dies the engine starts it on
 * another (after the dead runner's shard lock expires). It serves members and
 * clients on the control plane (`Control.ts`: effect/rpc behind the cluster
 * secret), publishes where in the registry, and runs each submitted job with a
 * `JobCoordinator` of its own,
 * side by side on the same members. A coordinator that takes over finds the
 * running jobs in the registry and resumes them from their last snapshots on
 * the members that reconnect to it.
 */
import type { JobMetrics, ManagementJobs, SnapshotStore } from "@tributary/core"
import { Cause, Deferred, Effect, Exit, Fiber, Queue, type Scope, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as ClusterManagement from "./ClusterManagement.ts"
import * as Control from "./Control.ts"
import * as JobCoordinator from "./JobCoordinator.ts"
import type { FromMember } from "./Protocol.ts"
import * as Registry from "./Registry.ts"

/** A job the coordinator knows of: its row, state, and while it runs its events and coordinator. */
interface JobEntry {
  row: Registry.JobRow
  state: Registry.JobState
  queue: Queue.Queue<JobCoordinator.Event> | undefined
  coordinator: JobCoordinator.JobCoordinator | undefined
  fiber: Fiber.Fiber<void> | undefined
  graph: ManagementJobs.Graph | undefined
  readonly history: JobCoordinator.History
  /** The counters when it last stopped running (ended or suspended). */
  last: JobMetrics | undefined
}

export interface ClusterCoordinatorOptions {
  readonly cluster: string
  /** The interface its control plane listens on. */
  readonly host: string
  readonly secret: string
  readonly store: SnapshotStore.SnapshotStore
  /** Where the links of this process's own member listen (it leaves with the coordinator). */
  readonly ownMember: readonly [host: string, port: number]
  /** How many runners the cluster engine sees alive: the members to wait for before deploying. */
  readonly liveRunners: Effect.Effect<number, unknown>
  /** Where the management server listens (its token is the cluster secret). */
  readonly management: ClusterManagement.ClusterManagementOptions
}

/** Runs until interrupted (the singleton moves, the member stops). */
export const run = (options: ClusterCoordinatorOptions): Effect.Effect<never, unknown, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const { cluster, host, secret, store } = options
    const sql = yield* SqlClient.SqlClient
    const scope = yield* Effect.scope
    // The snapshot store's services, for the operator's snapshot actions.
    const context = yield* Effect.context<never>()
    // Set from the registry when the coordinator publishes itself (before anyone can find it).
    let executions = 0
    const members: Array<JobCoordinator.Member> = []
    // The jobs, and which running job's queue each current execution's messages go to.
    const jobs = new Map<string, JobEntry>()
    const owners = new Map<number, Queue.Queue<JobCoordinator.Event>>()
    const queues = () => [...jobs.values()].flatMap((j) => (j.queue ? [j.queue] : []))
    const toEveryJob = (event: JobCoordinator.Event) => Effect.forEach(queues(), (q) => Queue.offer(q, event), { discard: true })
    // What the management server lists: every job this coordinator knows of.
    const listed: ManagementJobs.Registry = new Map()
    const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) => Effect.provideService(effect, SqlClient.SqlClient, sql)
    let nextIndex = 0

    /** A member joins: the stream of its orders lasts as long as it does; its end means the member is gone. */
    const join = (host: string, port: number): Stream.Stream<Control.ToJoined> =>
      Stream.callback<Control.ToJoined>((orders) =>
        Effect.gen(function*() {
          const member: JobCoordinator.Member = {
            index: nextIndex++,
            host,
            port,
            pid: undefined,
            send: (message) => Effect.asVoid(Queue.offer(orders, message)),
            state: "up"
          }
          members.push(member)
          yield* Queue.offer(orders, { _tag: "Welcome", member: member.index })
          yield* toEveryJob({ _tag: "Joined", member })
          yield* Effect.logInfo(`cluster "${cluster}": member ${member.index} joined from ${host}:${port}`)
          yield* Effect.addFinalizer(() => {
            if (member.state === "up") member.state = "dead"
            return toEveryJob({ _tag: "Exited", member, reason: "its connection to the coordinator ended" })
          })
        })
      )

    /** A member's message goes to the job of its execution. */
    const tell = (index: number, message: FromMember) =>
      Effect.suspend(() => {
        const member = members.find((m) => m.index === index)
        if (!member) return Effect.void
        if (message._tag === "Leave") return Effect.asVoid(leave(member))
        const owner = "execution" in message ? owners.get(message.execution) : undefined
        return owner ? Effect.asVoid(Queue.offer(owner, { _tag: "Message", member, message })) : Effect.void
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
        yield* Effect.forEach(queues(), (queue) =>
          Effect.gen(function*() {
            const done = yield* Deferred.make<void, JobCoordinator.ClusterStateError>()
            yield* Queue.offer(queue, { _tag: "Shutdown", index: member.index, done, handOver })
            // A job that does not run on it (or cannot do without it) lets it go at once.
            yield* Effect.ignore(Deferred.await(done))
          }), { concurrency: "unbounded", discard: true })
        member.state = "left"
        yield* member.send({ _tag: "Exit" })
      }))

    /**
     * A job is known by its name: the same submission again (a client that retried after the
     * coordinator moved) is accepted, and the job runs once; another job of that name is refused.
     */
    const submit = (submission: Control.Submission): Effect.Effect<Control.SubmitReply> =>
      Effect.gen(function*() {
        const added = yield* Registry.addJob(cluster, submission)
        const job = yield* Registry.job(cluster, submission.name)
        if (added && job) yield* startJob(job)
        return added || (job && sameSubmission(job, submission))
          ? { _tag: "Accepted" } as const
          : { _tag: "Rejected", reason: `another job named "${submission.name}" exists` } as const
      }).pipe(
        withSql,
        Effect.catchCause((cause) => Effect.succeed({ _tag: "Rejected", reason: `the registry failed: ${Cause.pretty(cause)}` } as const))
      )

    /** Whether `job` is what `submission` describes (the registry's options are JSON, their keys in any order). */
    const sameSubmission = (job: Registry.JobRow, submission: Control.Submission) => {
      const keys = Object.keys(submission.options) as Array<keyof Registry.JobOptions>
      return job.module === submission.module && job.export === submission.export &&
        Object.keys(job.options).length === keys.length && keys.every((key) => job.options[key] === submission.options[key])
    }

    const port = yield* Control.serve({ host, secret, handlers: { join, tell, submit } })
    const published = yield* Registry.publishCoordinator(cluster, host, port)
    executions = published.executions
    yield* Effect.logInfo(`cluster "${cluster}": coordinator (epoch ${published.epoch}) listens on ${host}:${port}`)

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

    /**
     * Runs `job` beside the others until it ends, then records how it ended; once, though a
     * submission and the running jobs of the registry both name it.
     */
    const startJob = (job: Registry.JobRow) =>
      Effect.flatMap(Queue.unbounded<JobCoordinator.Event>(), (queue) =>
        Effect.gen(function*() {
          const entry = known(job)
          if (entry.queue) return
          Object.assign(entry, { row: job, state: "running", queue })
          entry.fiber = yield* Effect.forkIn(runJob(entry, queue), scope)
        }))

    /** The entry of `job`, made (and listed by the management server) the first time. */
    const known = (job: Registry.JobRow): JobEntry => {
      const found = jobs.get(job.name)
      if (found) return found
      const entry: JobEntry = {
        row: job,
        state: job.status,
        queue: undefined,
        coordinator: undefined,
        fiber: undefined,
        graph: undefined,
        history: { snapshots: [], exceptions: [] },
        last: undefined
      }
      jobs.set(job.name, entry)
      listed.set(job.name, {
        job: ClusterManagement.managed(entry, {
          store,
          context,
          cancel: () => cancel(entry),
          drain: () => drain(entry),
          suspend: () => suspend(entry),
          resume: () => resume(entry)
        }),
        get graph() {
          return (entry.graph ??= entry.coordinator?.graph()) ?? ClusterManagement.noGraph
        }
      })
      return entry
    }

    /** Cancels a running (or suspended) job and waits until it is recorded as cancelled. */
    const cancel = (entry: JobEntry) =>
      Effect.gen(function*() {
        const { coordinator, fiber } = entry
        if (entry.state === "suspended") {
          yield* Effect.orDie(withSql(Registry.setState(cluster, entry.row.name, "cancelled", null)))
          entry.state = "cancelled"
        }
        if (!coordinator || !fiber) return
        yield* coordinator.cancel
        yield* Fiber.await(fiber)
      })

    /** Stops a running job with drain and waits until it is recorded as completed. */
    const drain = (entry: JobEntry) =>
      Effect.gen(function*() {
        const { coordinator, fiber } = entry
        if (!coordinator || !fiber) return yield* new JobCoordinator.ClusterStateError({ reason: `only a running job can stop with drain; it is ${entry.state}` })
        yield* Effect.ignore(coordinator.drain)
        yield* Fiber.await(fiber)
      })

    /** Stops the job at a terminal snapshot; it stays in the registry as suspended until resumed. */
    const suspend = (entry: JobEntry) =>
      Effect.gen(function*() {
        const { coordinator, fiber } = entry
        if (!coordinator || !fiber) return yield* new JobCoordinator.ClusterStateError({ reason: `the job is ${entry.state}` })
        if (entry.row.options.guarantee === "none") {
          return yield* new JobCoordinator.ClusterStateError({ reason: "suspending needs a processing guarantee" })
        }
        if (!(yield* coordinator.handOver)) return yield* new JobCoordinator.ClusterStateError({ reason: "the job ended before it could be suspended" })
        yield* Effect.orDie(withSql(Registry.setState(cluster, entry.row.name, "suspended", null)))
        entry.state = "suspended"
        yield* Fiber.interrupt(fiber)
      })

    const resume = (entry: JobEntry) =>
      Effect.gen(function*() {
        if (entry.state !== "suspended") return yield* new JobCoordinator.ClusterStateError({ reason: `only a suspended job can resume; it is ${entry.state}` })
        yield* Effect.orDie(withSql(Registry.setState(cluster, entry.row.name, "running", null)))
        yield* withSql(startJob(entry.row))
      })

    const runJob = (entry: JobEntry, queue: Queue.Queue<JobCoordinator.Event>) =>
      Effect.scoped(Effect.gen(function*() {
        const job = entry.row
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            if (entry.coordinator) entry.last = yield* entry.coordinator.metrics
            entry.graph ??= entry.coordinator?.graph()
            Object.assign(entry, { queue: undefined, coordinator: undefined, fiber: undefined })
          })
        )
        yield* membersReady
        let sourceParallelism = job.sourceParallelism
        if (sourceParallelism === null) {
          sourceParallelism = job.options.parallelism * members.filter((m) => m.state === "up").length
          yield* Registry.fixSourceParallelism(cluster, job.name, sourceParallelism)
          entry.row = { ...job, sourceParallelism }
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
          restartPolicy: Registry.decodePolicy(job.options),
          snapshotInterval: job.options.snapshotIntervalMs,
          scaleUpDelay: job.options.scaleUpDelayMs,
          // A job that had started before (its sources fixed) continues from its last snapshot.
          resume: job.sourceParallelism !== null,
          history: entry.history,
          nextExecution: Effect.suspend(() => {
            const execution = ++executions
            if (current !== undefined) owners.delete(current)
            owners.set((current = execution), queue)
            return Effect.as(Effect.provideService(Registry.recordExecution(cluster, execution), SqlClient.SqlClient, sql), execution)
          })
        }, members, queue)
        entry.coordinator = coordinator
        // When the singleton moves (the cluster rebalanced, the member stops), the successor
        // resumes from a terminal snapshot: nothing is replayed twice, even with at-least-once.
        yield* Effect.addFinalizer(() => Effect.ignore(Effect.timeout(coordinator.handOver, "10 seconds")))
        const exit = yield* Effect.exit(coordinator.join)
        if (current !== undefined) owners.delete(current)
        const state = Exit.isFailure(exit) ? "failed" : (yield* coordinator.status).cancelled ? "cancelled" : "completed"
        yield* Registry.setState(cluster, job.name, state, Exit.isSuccess(exit) ? null : Cause.pretty(exit.cause))
        entry.state = state
        yield* Effect.logInfo(`cluster "${cluster}": job "${job.name}" ${state}`)
      })).pipe(Effect.ignore)

    // Jobs that were running when the previous coordinator stopped go on; suspended ones are listed.
    for (const row of yield* Registry.currentJobs(cluster)) yield* row.status === "running" ? startJob(row) : Effect.sync(() => known(row))
    yield* ClusterManagement.serve(listed, {
      port: options.management.port,
      host: options.management.host ?? host,
      secret,
      members: () => members.map(({ index, host, port, state }) => ({ index, host, port, state, coordinator: host === options.ownMember[0] && port === options.ownMember[1] })),
      submit: (submission) =>
        Effect.flatMap(submit(submission), (reply) => {
          const entry = listed.get(submission.name)
          if (reply._tag === "Rejected") return Effect.fail(reply.reason)
          return entry ? Effect.succeed(entry.job) : Effect.fail(`the job "${submission.name}" has ended`)
        })
    })
    return yield* Effect.never
  })
