/**
 * Every core from one script: `Workers.run(pipeline, { workers })` runs the
 * job over `workers` processes on 127.0.0.1 — this one and `workers − 1`
 * copies of it. As with Node's `cluster` module, each copy runs the same
 * script (TRIBUTARY_WORKER set) and so builds the same pipeline; when it
 * reaches the same `run` call it serves as a member of that job instead of
 * starting one, and exits when the job ends. This process coordinates the job
 * and is member 0 itself, so a sink that keeps records in memory
 * (`Sinks.collect`) has them all here, as it would embedded.
 */
import type { Pipeline, PlanError } from "@tributary/core"
import { Cause, Effect, Exit, Fiber, Queue, type Scope } from "effect"
import { existsSync } from "node:fs"
import type { CoordinatorError, MemberError } from "../coordinator/JobCoordinator.ts"
import type { FromMember, ToMember } from "../coordinator/Protocol.ts"
import { serveParent } from "../local/Child.ts"
import * as LocalCluster from "../local/LocalCluster.ts"
import * as Agent from "../member/Agent.ts"
import * as Process from "../platform/Process.ts"

export interface WorkersOptions extends Omit<LocalCluster.LocalClusterOptions, "module" | "export" | "members"> {
  /** Processes, this one included (default: the number of cores). */
  readonly workers?: number | undefined
}

/** In a worker copy of the script. What the script must do once only (print, prepare input) belongs behind `if (!Workers.isWorker)`. */
export const isWorker: boolean = process.env.TRIBUTARY_WORKER !== undefined

// `run` calls so far: a worker serves the call it was started for (TRIBUTARY_WORKER is "call:index").
let calls = 0

/** Runs the job to its end over this process and `workers − 1` copies of the script. */
export const run = <R>(
  pipeline: Pipeline.Pipeline<unknown, R>,
  options: WorkersOptions = {}
): Effect.Effect<void, MemberError | CoordinatorError | Process.ProcessError | PlanError, R> =>
  Effect.suspend(() => {
    const call = calls++
    const resolve = () => Effect.succeed(pipeline)
    const worker = process.env.TRIBUTARY_WORKER
    // In a worker, an earlier call's job ran with workers of its own.
    if (worker !== undefined) return Number(worker.split(":")[0]) === call ? serveParent(resolve) : Effect.void
    // The copies run the script again: there must be one (not a REPL or `-e` code).
    const script = process.argv[1] ?? ""
    const workers = options.workers ?? navigator.hardwareConcurrency
    if (workers > 1 && !existsSync(script)) {
      return Effect.fail(new Process.ProcessError({ process: "Workers.run", reason: `the copies need a script file to run, and this process has none ("${script}")` }))
    }
    const launch: LocalCluster.Launch<R> = (index, secret) =>
      index === 0
        ? inThisProcess(resolve, secret)
        : Process.spawn(`worker ${index}`, script, process.argv.slice(2), { TRIBUTARY_SECRET: secret, TRIBUTARY_WORKER: `${call}:${index}` }, {
          runtimeArgs: Process.ownRuntimeArgs(),
          forwardOutput: true
        })
    return Effect.scoped(Effect.flatMap(
      LocalCluster.startWith({ ...options, module: script, export: `run #${call}`, members: workers }, launch),
      (job) => job.join
    ))
  })

/** Member 0: an agent in this process, talking to the coordinator through queues as a child would through its pipes. */
const inThisProcess = <R>(
  resolve: () => Effect.Effect<Pipeline.Pipeline<unknown, R>>,
  secret: string
): Effect.Effect<Process.Child, Process.ProcessError, Scope.Scope | R> =>
  Effect.gen(function*() {
    const toAgent = yield* Queue.unbounded<ToMember>()
    const fromAgent = yield* Queue.unbounded<FromMember, Process.ProcessError>()
    const agent = yield* Effect.forkScoped(Effect.scoped(
      Agent.listenAndServe({ receive: Queue.take(toAgent), tell: (m) => Queue.offerUnsafe(fromAgent, m), secret, resolve })
    ).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() =>
          Queue.failCauseUnsafe(fromAgent, Cause.fail(new Process.ProcessError({ process: "member 0", reason: Exit.isSuccess(exit) ? "ended" : Cause.pretty(exit.cause) })))
        )
      )
    ))
    return {
      pid: process.pid,
      message: Queue.take(fromAgent),
      send: (message) => Queue.offer(toAgent, message as ToMember).pipe(Effect.asVoid),
      exit: Effect.map(Fiber.await(agent), (exit) => ({ code: Exit.isSuccess(exit) ? 0 : 1, signal: null, stderr: Exit.isSuccess(exit) ? "" : Cause.pretty(exit.cause) }))
    }
  })
