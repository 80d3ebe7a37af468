/**
 * A member process of a local cluster (started by `LocalCluster`):
 * `member.ts <index>`, the cluster secret in TRIBUTARY_SECRET. It listens for
 * links, tells the coordinator (its parent) where, then serves it over its
 * stdin and stdout (see `member/Agent.ts`).
 */
import { Platform } from "@tributary/core"
import { Cause, Effect, Queue } from "effect"
import type { FromMember, ToMember } from "../coordinator/Protocol.ts"
import * as Link from "../link/Link.ts"
import * as Agent from "../member/Agent.ts"
import * as Process from "../platform/Process.ts"

const [index] = process.argv.slice(2)
// For a pipeline module that wants to know where it runs.
process.env.TRIBUTARY_MEMBER = index

const tell = (message: FromMember) => Effect.runSync(Process.tellParent(message))

const program = Effect.scoped(Effect.gen(function*() {
  const secret = process.env.TRIBUTARY_SECRET ?? ""
  const listener = yield* Link.listen({ secret })
  const fromParent = yield* Process.parentMessages()
  tell({ _tag: "Listening", host: listener.host, port: listener.port })
  yield* Agent.serve({ receive: Queue.take(fromParent) as Effect.Effect<ToMember, Process.ProcessError>, tell, listener, secret })
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
