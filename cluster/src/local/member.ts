/**
 * A member process of a local cluster (started by `LocalCluster`):
 * `member.ts <module> <export> <index>`, the cluster secret in
 * TRIBUTARY_SECRET. It listens for links, tells the coordinator (its parent)
 * the port, then runs the executions the coordinator deploys — one at a time,
 * each its share of the pipeline the module exports (every member plans the
 * same job from the same module) — until told to exit.
 */
import { Platform, type Pipeline, Tributary } from "@tributary/core"
import { Cause, Effect, Fiber, Queue } from "effect"
import * as Link from "../link/Link.ts"
import * as Process from "../platform/Process.ts"
import { MemberSnapshots } from "./MemberSnapshots.ts"
import * as Placement from "./Placement.ts"
import type { FromMember, ToMember } from "./Protocol.ts"

const [module, exportName, index] = process.argv.slice(2)
const secret = process.env.TRIBUTARY_SECRET ?? ""
// For a pipeline module that wants to know where it runs.
process.env.TRIBUTARY_MEMBER = index

const tell = (message: FromMember) => Effect.runSync(Process.tellParent(message))

const program = Effect.scoped(Effect.gen(function*() {
  const listener = yield* Link.listen({ secret })
  const router = yield* Placement.router(listener)
  const fromParent = yield* Process.parentMessages()
  tell({ _tag: "Listening", port: listener.port })
  const pipeline = (yield* Effect.promise(() => import(module!)))[exportName!] as Pipeline.Pipeline<never> | undefined
  if (pipeline === undefined) return yield* Effect.die(new Error(`${module} exports no pipeline "${exportName}"`))
  let current: { readonly execution: number; readonly fiber: Fiber.Fiber<void>; readonly snapshots: MemberSnapshots | undefined } | undefined

  const deploy = (d: Extract<ToMember, { _tag: "Deploy" }>) =>
    Effect.gen(function*() {
      const { execution } = d
      process.env.TRIBUTARY_EXECUTION = String(execution)
      let tasklets: number
      try {
        tasklets = Placement.taskletsOn(pipeline, { ...d, members: d.ports.length })
      } catch (e) {
        return tell({ _tag: "Failed", execution, reason: String(e) })
      }
      tell({ _tag: "Deployed", execution, tasklets })
      const snapshots = d.guarantee ? new MemberSnapshots(execution, d.guarantee, d.restored?.id ?? 0, tell) : undefined
      const run = Effect.scoped(Effect.gen(function*() {
        const placement = yield* Placement.make({ execution, member: d.member, ports: d.ports, router, secret, snapshots, restored: d.restored })
        yield* Tributary.run(pipeline, { parallelism: d.parallelism, sourceParallelism: d.sourceParallelism, placement })
      }))
      const fiber = yield* Effect.forkChild(run.pipe(
        Effect.matchCause({
          onSuccess: () => tell({ _tag: "Finished", execution }),
          onFailure: (cause) => void (Cause.hasInterruptsOnly(cause) || tell({ _tag: "Failed", execution, reason: Cause.pretty(cause) }))
        })
      ))
      current = { execution, fiber, snapshots }
    })

  while (true) {
    const message = (yield* Queue.take(fromParent)) as ToMember
    if (message._tag === "Exit") return
    if (message._tag === "Deploy") {
      yield* deploy(message)
      continue
    }
    if (message.execution !== current?.execution) continue
    switch (message._tag) {
      case "Snapshot":
        current.snapshots?.request(message.id, message.terminal)
        break
      case "Commit": {
        const { execution } = current
        yield* Effect.catchCause(current.snapshots?.commit(message.tasklet, message.id) ?? Effect.void, (cause) =>
          Effect.sync(() => tell({ _tag: "Failed", execution, reason: `commit ${message.id} of ${message.tasklet}: ${Cause.pretty(cause)}` })))
        break
      }
      case "Finish":
        current.snapshots?.release()
        break
      case "Cancel":
        yield* Fiber.interrupt(current.fiber)
        tell({ _tag: "Cancelled", execution: current.execution })
        break
    }
  }
}))

await Effect.runPromise(
  program.pipe(
    Effect.provide(Platform.layer),
    Effect.matchCauseEffect({
      onSuccess: () => Process.exit(0),
      onFailure: (cause) => Effect.andThen(Process.complain(Cause.pretty(cause)), Process.exit(1))
    })
  )
)
