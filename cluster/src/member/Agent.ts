/**
 * A member's side of the control protocol, whatever carries it (a local
 * cluster's pipes, a cluster's link to the coordinator): runs the executions
 * the coordinator deploys — one per job at a time, each its share of the
 * pipeline the named module exports (every member plans the same job from the
 * same module) — follows their snapshot requests and commits, until told to
 * exit or the messages end.
 */
import type { Pipeline } from "@tributary/core"
import { ManagementJobs, Tributary } from "@tributary/core"
import { Cause, Effect, Fiber, type Scope } from "effect"
import * as Link from "../link/Link.ts"
import { LinkClosedError } from "../link/Errors.ts"
import type { FromMember, ToMember } from "../coordinator/Protocol.ts"
import { MemberSnapshots } from "./MemberSnapshots.ts"
import * as Placement from "./Placement.ts"

export interface AgentOptions<R> {
  /** The next message from the coordinator; failing ends the agent (and its execution). */
  readonly receive: Effect.Effect<ToMember, unknown>
  readonly tell: (message: FromMember) => void
  /** The links this member accepts from its peers. */
  readonly listener: Link.Listener
  readonly secret: string
  /** The pipeline a Deploy names (default: the export of that name of that module). */
  readonly resolve?: ((module: string, exportName: string) => Effect.Effect<Pipeline.Pipeline<unknown, R>, unknown>) | undefined
}

/** How often a member reports its counters to the coordinator (the job's default sampling interval). */
const METRICS_INTERVAL = "1 second"

const pipelines = new Map<string, Pipeline.Pipeline<unknown>>()
const importPipeline = (module: string, exportName: string) =>
  Effect.gen(function*() {
    const key = `${module}#${exportName}`
    const known = pipelines.get(key)
    if (known) return known
    const exported = (yield* Effect.promise(() => import(module)))[exportName] as Pipeline.Pipeline<unknown> | undefined
    if (exported === undefined) return yield* Effect.fail(new Error(`${module} exports no pipeline "${exportName}"`))
    pipelines.set(key, exported)
    return exported
  })

/** Serves the coordinator until it says Exit (succeeds) or its messages fail (fails with that). */
export const serve = <R = never>(options: AgentOptions<R>): Effect.Effect<void, unknown, Scope.Scope | R> =>
  Effect.gen(function*() {
    const { tell, secret } = options
    const router = yield* Placement.router(options.listener)
    const running = new Map<number, { readonly fiber: Fiber.Fiber<void>; readonly snapshots: MemberSnapshots | undefined; drain: () => void }>()

    const deploy = (d: Extract<ToMember, { _tag: "Deploy" }>) =>
      Effect.gen(function*() {
        const { execution } = d
        const imported = yield* Effect.result((options.resolve ?? importPipeline)(d.module, d.export))
        if (imported._tag === "Failure") return tell({ _tag: "Failed", execution, reason: String(imported.failure) })
        const pipeline = imported.success
        const snapshots = d.guarantee ? new MemberSnapshots(execution, d.guarantee, d.restored?.id ?? 0, tell) : undefined
        // Until the job runs, a Drain is remembered and done as soon as it does.
        let drained = false
        const entry = { snapshots, drain: () => void (drained = true) }
        const run = Effect.scoped(Effect.gen(function*() {
          const placement = yield* Placement.make({
            execution,
            member: d.member,
            peers: d.peers,
            router,
            secret,
            snapshots,
            restored: d.restored,
            started: (tasklets) => tell({ _tag: "Deployed", execution, tasklets })
          })
          // Submitted into a registry of its own: the graph and the counters go to the coordinator, which shows them.
          const registry: ManagementJobs.Registry = new Map()
          const job = yield* Effect.provideService(
            Tributary.submit(pipeline, { name: d.job, parallelism: d.parallelism, sourceParallelism: d.sourceParallelism, placement }),
            ManagementJobs.Current,
            registry
          )
          entry.drain = () => void Effect.runFork(Effect.ignore(job.stop({ drain: true })))
          if (drained) entry.drain()
          let graph: ManagementJobs.Graph | undefined = registry.get(job.id)!.graph
          const report = Effect.map(job.metrics, ({ instances }) => {
            tell({ _tag: "Metrics", execution, instances, graph })
            graph = undefined
          })
          yield* Effect.forkScoped(Effect.forever(Effect.andThen(report, Effect.sleep(METRICS_INTERVAL))))
          yield* job.join
          // The final counts, before Finished: what a finished job shows.
          yield* report
        }))
        const fiber = yield* Effect.forkChild(run.pipe(
          Effect.matchCause({
            onSuccess: () => tell({ _tag: "Finished", execution }),
            onFailure: (cause) =>
              void (Cause.hasInterruptsOnly(cause) || tell({ _tag: "Failed", execution, reason: Cause.pretty(cause), linkClosed: fromClosedLink(cause) }))
          }),
          Effect.ensuring(Effect.sync(() => running.delete(execution)))
        ))
        running.set(execution, Object.assign(entry, { fiber }))
      })

    // Whatever ends the agent (Exit, lost messages) stops its executions first.
    yield* Effect.addFinalizer(() => Effect.forEach([...running.values()], ({ fiber }) => Fiber.interrupt(fiber), { discard: true }))
    while (true) {
      const message = yield* options.receive
      if (message._tag === "Exit") return
      if (message._tag === "Deploy") {
        yield* deploy(message)
        continue
      }
      const { execution } = message
      const current = running.get(execution)
      switch (message._tag) {
        case "Snapshot":
          current?.snapshots?.request(message.id, message.terminal)
          break
        case "Commit":
          yield* Effect.catchCause(current?.snapshots?.commit(message.tasklet, message.id) ?? Effect.void, (cause) =>
            Effect.sync(() => tell({ _tag: "Failed", execution, reason: `commit ${message.id} of ${message.tasklet}: ${Cause.pretty(cause)}` })))
          break
        case "Drain":
          current?.drain()
          break
        case "Finish":
          current?.snapshots?.release()
          break
        case "Cancel":
          // Also answered for an execution that already ended here: the coordinator waits for every member.
          if (current) yield* Fiber.interrupt(current.fiber)
          tell({ _tag: "Cancelled", execution })
          break
      }
    }
  })

/** A member of a local cluster: listens for its peers' links (127.0.0.1), tells the coordinator where, then serves it. */
export const listenAndServe = <R = never>(options: Omit<AgentOptions<R>, "listener">): Effect.Effect<void, unknown, Scope.Scope | R> =>
  Effect.gen(function*() {
    const listener = yield* Link.listen({ secret: options.secret })
    options.tell({ _tag: "Listening", host: listener.host, port: listener.port })
    return yield* serve({ ...options, listener })
  })

/** Whether a failure comes from a closed link to another member: the error, or an error it wraps as its `cause`. */
const fromClosedLink = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) => {
    let error: unknown = Cause.isFailReason(reason) ? reason.error : undefined
    for (let depth = 0; error !== undefined && depth < 8; depth++) {
      if (error instanceof LinkClosedError) return true
      error = typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined
    }
    return false
  })
