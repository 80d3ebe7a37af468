/**
 * A member process of a local cluster (started by `LocalCluster.run`):
 * `member.ts <module> <export> <member> <members> <parallelism>`, the cluster
 * secret in TRIBUTARY_SECRET. It listens for links, tells its parent the port,
 * learns every member's port, then runs its share of the pipeline the module
 * exports (every member plans the same job from the same module).
 */
import { Platform, type Pipeline, Tributary } from "@tributary/core"
import { Effect, Queue } from "effect"
import * as Link from "../link/Link.ts"
import * as Process from "../platform/Process.ts"
import * as Placement from "./Placement.ts"

const [module, exportName, member, members, parallelism] = process.argv.slice(2)
const secret = process.env.TRIBUTARY_SECRET ?? ""
// The member's index, for a pipeline module that wants to know where it runs.
process.env.TRIBUTARY_MEMBER = member

const program = Effect.scoped(Effect.gen(function*() {
  const listener = yield* Link.listen({ secret })
  yield* Process.tellParent({ port: listener.port })
  const fromParent = yield* Process.parentMessages()
  const { ports } = (yield* Queue.take(fromParent)) as { ports: Array<number> }
  const exported = (yield* Effect.promise(() => import(module!)))[exportName!] as Pipeline.Pipeline<never> | undefined
  if (exported === undefined) return yield* Effect.die(new Error(`${module} exports no pipeline "${exportName}"`))
  const placement = yield* Placement.make({ member: Number(member), members: Number(members), ports, listener, secret })
  yield* Tributary.run(exported, { parallelism: Number(parallelism) * Number(members), placement })
}))

await Effect.runPromise(
  program.pipe(
    Effect.provide(Platform.layer),
    Effect.matchCauseEffect({
      onSuccess: () => Effect.andThen(Process.tellParent({ done: true }), Process.exit(0)),
      onFailure: (cause) => Effect.andThen(Process.complain(String(cause)), Process.exit(1))
    })
  )
)
