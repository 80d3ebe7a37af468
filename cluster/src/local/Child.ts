/**
 * A member that its parent process drives: it listens for links, tells the
 * parent where, then serves it over stdin and stdout (`member/Agent.ts`) until
 * told to exit — and then ends the process (code 1, the cause on stderr, if
 * serving failed).
 */
import type { Pipeline } from "@tributary/core"
import { Cause, Effect, Queue } from "effect"
import type { FromMember, ToMember } from "../coordinator/Protocol.ts"
import * as Agent from "../member/Agent.ts"
import * as Process from "../platform/Process.ts"

const tell = (message: FromMember) => Effect.runSync(Process.tellParent(message))

/** Serves the parent (the cluster secret in TRIBUTARY_SECRET), then exits. */
export const serveParent = <R = never>(
  resolve?: (module: string, exportName: string) => Effect.Effect<Pipeline.Pipeline<unknown, R>, unknown>
): Effect.Effect<never, never, R> =>
  Effect.scoped(Effect.gen(function*() {
    const fromParent = yield* Process.parentMessages()
    yield* Agent.listenAndServe({
      receive: Queue.take(fromParent) as Effect.Effect<ToMember, Process.ProcessError>,
      tell,
      secret: process.env.TRIBUTARY_SECRET ?? "",
      resolve
    })
  })).pipe(
    Effect.matchCauseEffect({
      onSuccess: () => Process.exit(0),
      onFailure: (cause) => Effect.andThen(Process.complain(Cause.pretty(cause)), Process.exit(1))
    }),
    Effect.andThen(Effect.never)
  )
