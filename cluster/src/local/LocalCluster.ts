/**
 * Every core of this machine: runs a pipeline over member processes on
 * 127.0.0.1 that exchange batches over authenticated, flow-controlled links.
 * This process is the job's coordinator (`coordinator/JobCoordinator.ts`):
 * it starts the members as child processes and talks to each over its stdin
 * and stdout. Each member imports the module that exports the pipeline
 * (functions do not travel between processes; the module does).
 */
import { type PlanError, RestartPolicy, SnapshotStore } from "@tributary/core"
import { Effect, Queue, Scope } from "effect"
import * as JobCoordinator from "../coordinator/JobCoordinator.ts"
import type { FromMember } from "../coordinator/Protocol.ts"
import * as Process from "../platform/Process.ts"

export { ClusterStateError, CoordinatorError, MemberError } from "../coordinator/JobCoordinator.ts"
export type { ClusterStatus, MemberState } from "../coordinator/JobCoordinator.ts"

export interface LocalClusterOptions extends JobCoordinator.JobSettings {
  /** Member processes to start with (default: the number of cores). */
  readonly members?: number | undefined
  /** Where the coordinator keeps snapshots (default: the `SnapshotStore.layer` provided, else in memory). */
  readonly snapshotStore?: SnapshotStore.SnapshotStore | undefined
  /** The job's name, under which its snapshots are stored (default "local-cluster-job"). */
  readonly name?: string | undefined
}

/** A handle on a job running on a local cluster. */
export interface ClusterJob extends JobCoordinator.JobCoordinator {
  /** Starts one more member; the job is rescaled onto it after `scaleUpDelay` (needs a processing guarantee). */
  readonly addMember: Effect.Effect<number, Process.ProcessError | JobCoordinator.ClusterStateError>
}

// From the sources, src/local/member.ts; from a build, dist/member.js (an entry of its own).
const memberScript = decodeURIComponent(new URL(import.meta.url.endsWith(".ts") ? "./member.ts" : "./member.js", import.meta.url).pathname)

const randomSecret = () => Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("")

/** Starts member `index` (knowing the cluster secret): a process, or anything that talks like one. */
export type Launch<R> = (index: number, secret: string) => Effect.Effect<Process.Child, Process.ProcessError, Scope.Scope | R>

/** Starts the members and the job on them; the job is cancelled and its members stopped when the scope closes. */
export const start = (options: LocalClusterOptions): Effect.Effect<ClusterJob, Process.ProcessError | PlanError, Scope.Scope> =>
  startWith(options, (index, secret) => Process.spawn(`member ${index}`, memberScript, [String(index)], { TRIBUTARY_SECRET: secret }))

/** `start`, with members launched by `launch`. */
export const startWith = <R>(options: LocalClusterOptions, launch: Launch<R>): Effect.Effect<ClusterJob, Process.ProcessError | PlanError, Scope.Scope | R> =>
  Effect.gen(function*() {
    const restartPolicy = yield* Effect.try({ try: () => RestartPolicy.fromOptions(options), catch: (e) => e as PlanError })
    const scope = yield* Effect.scope
    const context = yield* Effect.context<R>()
    const secret = randomSecret()
    const guarantee = options.processingGuarantee === "none" ? undefined : options.processingGuarantee
    const perMember = options.parallelism ?? 1
    const initialMembers = options.members ?? navigator.hardwareConcurrency
    const events = yield* Queue.unbounded<JobCoordinator.Event>()

    /** Starts member `index` and waits until it listens; its messages and its end become events. */
    const spawn = (index: number) =>
      Effect.gen(function*() {
        const child = yield* Effect.provideContext(launch(index, secret), context)
        const hello = (yield* child.message) as FromMember
        if (hello._tag !== "Listening") return yield* new Process.ProcessError({ process: `member ${index}`, reason: `said ${hello._tag} first` })
        const member: JobCoordinator.Member = { index, host: hello.host, port: hello.port, pid: child.pid, send: child.send, state: "up" }
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
    const members = yield* Effect.forEach(Array.from({ length: initialMembers }, (_, i) => i), spawn, { concurrency: "unbounded" })
    let nextIndex = initialMembers
    let executions = 0

    const job = yield* JobCoordinator.start({
      name: options.name ?? "local-cluster-job",
      module: options.module,
      export: options.export ?? "pipeline",
      guarantee,
      store: options.snapshotStore ?? (yield* SnapshotStore.Current) ?? SnapshotStore.memory(),
      parallelism: perMember,
      sourceParallelism: perMember * initialMembers,
      restartPolicy,
      snapshotInterval: options.snapshotInterval ?? "10 seconds",
      scaleUpDelay: options.scaleUpDelay ?? "10 seconds",
      nextExecution: Effect.sync(() => ++executions)
    }, members, events)
    return {
      ...job,
      // The members stop with the job.
      join: Effect.ensuring(job.join, Effect.forEach(members, (m) => m.state === "dead" ? Effect.void : m.send({ _tag: "Exit" }), { discard: true })),
      shutdownMember: (index) =>
        Effect.andThen(job.shutdownMember(index), () => {
          const member = members.find((m) => m.index === index)!
          member.state = "left"
          return member.send({ _tag: "Exit" })
        }),
      addMember: Effect.gen(function*() {
        if (!guarantee) return yield* new JobCoordinator.ClusterStateError({ reason: "adding a member needs a processing guarantee" })
        const member = yield* spawn(nextIndex++)
        members.push(member)
        yield* Queue.offer(events, { _tag: "Joined", member })
        return member.index
      })
    }
  })

/** Runs the job to its end on a local cluster and stops the members. */
export const run = (
  options: LocalClusterOptions
): Effect.Effect<void, JobCoordinator.MemberError | JobCoordinator.CoordinatorError | Process.ProcessError | PlanError> =>
  Effect.scoped(Effect.flatMap(start(options), (job) => job.join))
