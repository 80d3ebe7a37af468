/**
 * The job coordinator names the member that died, not the one that saw its
 * link to it close first: members are fakes driven through the coordinator's
 * event queue, so the order of the two reports is fixed.
 */
import { Effect, Queue } from "effect"
import { describe, expect, it } from "vitest"
import * as JobCoordinator from "../cluster/src/coordinator/JobCoordinator.ts"
import { RestartPolicy, SnapshotStore } from "../core/src/index.ts"

describe("job coordinator without a processing guarantee", () => {
  it("a member failing because its link closed, then the other member's exit: the job fails naming the one that exited", async () => {
    const error = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const events = yield* Queue.unbounded<JobCoordinator.Event>()
      const fake = (index: number): JobCoordinator.Member => ({
        index,
        host: "127.0.0.1",
        port: 1,
        pid: undefined,
        state: "up",
        // Every member starts the execution it is sent at once.
        send: (message) =>
          message._tag === "Deploy"
            ? Queue.offer(events, { _tag: "Message", member: members[index]!, message: { _tag: "Deployed", execution: message.execution, tasklets: 1 } }).pipe(Effect.asVoid)
            : message._tag === "Cancel"
            ? Queue.offer(events, { _tag: "Message", member: members[index]!, message: { _tag: "Cancelled", execution: message.execution } }).pipe(Effect.asVoid)
            : Effect.void
      })
      const members = [fake(0), fake(1)]
      const job = yield* JobCoordinator.start({
        name: "blame",
        module: "unused",
        export: "pipeline",
        guarantee: undefined,
        store: SnapshotStore.memory(),
        parallelism: 1,
        sourceParallelism: 2,
        restartPolicy: RestartPolicy.defaultPolicy,
        snapshotInterval: "1 second",
        scaleUpDelay: "1 second",
        nextExecution: Effect.succeed(1)
      }, members, events)
      yield* Effect.sleep(20)
      yield* Queue.offer(events, { _tag: "Message", member: members[0]!, message: { _tag: "Failed", execution: 1, reason: "link closed: the connection failed (ECONNRESET)", linkClosed: true } })
      yield* Effect.sleep(50)
      yield* Queue.offer(events, { _tag: "Exited", member: members[1]!, reason: "exited (SIGKILL)" })
      return yield* Effect.flip(job.join)
    })))
    expect(error.message).toMatch(/member 1: exited \(SIGKILL\)/)
  })
})
