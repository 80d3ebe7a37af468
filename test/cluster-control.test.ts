/**
 * The cluster's control plane (effect/rpc behind the links' handshake): what
 * the coordinator relies on — a member's messages arrive in order, its orders
 * stream to it, its going away ends its stream on the coordinator's side, and
 * a peer without the secret gets nothing.
 */
import { Deferred, Effect, Queue, Stream } from "effect"
import { describe, expect, it } from "vitest"
import * as Control from "../cluster/src/coordinator/Control.ts"
import type { FromMember } from "../cluster/src/coordinator/Protocol.ts"

const secret = "control-test-secret"

describe("control plane", () => {
  it("streams a member's orders, delivers its messages in order, and ends its stream on the coordinator's side when it goes", async () => {
    const told: Array<FromMember> = []
    const program = Effect.scoped(Effect.gen(function*() {
      const gone = yield* Deferred.make<void>()
      const port = yield* Control.serve({
        host: "127.0.0.1",
        secret,
        handlers: {
          join: (host, port) =>
            Stream.callback<Control.ToJoined>((orders) =>
              Effect.gen(function*() {
                yield* Queue.offer(orders, { _tag: "Welcome", member: port })
                yield* Queue.offer(orders, { _tag: "Snapshot", execution: 1, id: 7, terminal: host === "terminal" })
                yield* Effect.addFinalizer(() => Deferred.succeed(gone, undefined))
              })
            ),
          tell: (_member, message) => Effect.sync(() => void told.push(message)),
          submit: (job) => Effect.succeed(job.name === "taken" ? { _tag: "Rejected", reason: "exists" } as const : { _tag: "Accepted" } as const)
        }
      })
      const orders = yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* Control.connect("127.0.0.1", port, secret)
        const received = yield* Queue.unbounded<Control.ToJoined>()
        yield* Effect.forkScoped(Stream.runForEach(client.join("terminal", 4242), (o) => Queue.offer(received, o)))
        const first = [yield* Queue.take(received), yield* Queue.take(received)]
        for (let id = 0; id < 200; id++) yield* client.tell(4242, { _tag: "Register", execution: 1, tasklet: `t${id}` })
        const replies = [
          yield* client.submit({ name: "new", module: "m", export: "e", options: { guarantee: "none", parallelism: 1, snapshotIntervalMs: 1, scaleUpDelayMs: 1, maxFailures: 0, failureIntervalMs: null } }),
          yield* client.submit({ name: "taken", module: "m", export: "e", options: { guarantee: "none", parallelism: 1, snapshotIntervalMs: 1, scaleUpDelayMs: 1, maxFailures: 0, failureIntervalMs: null } })
        ]
        return { first, replies }
      }))
      // The member's connection closed with its scope: the coordinator's side of its stream ends.
      yield* Effect.timeout(Deferred.await(gone), "5 seconds")
      return orders
    }))
    const { first, replies } = await Effect.runPromise(program)
    expect(first).toEqual([{ _tag: "Welcome", member: 4242 }, { _tag: "Snapshot", execution: 1, id: 7, terminal: true }])
    expect(told.map((m) => (m as { tasklet: string }).tasklet)).toEqual(Array.from({ length: 200 }, (_, id) => `t${id}`))
    expect(replies).toEqual([{ _tag: "Accepted" }, { _tag: "Rejected", reason: "exists" }])
  })

  it("refuses a client without the secret before any call: LinkAuthError, and nothing reaches the handlers", async () => {
    let called = 0
    const error = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const port = yield* Control.serve({
        host: "127.0.0.1",
        secret,
        handlers: {
          join: () => Stream.sync(() => ++called).pipe(Stream.as({ _tag: "Exit" } as const)),
          tell: () => Effect.sync(() => void ++called),
          submit: () => Effect.sync(() => ++called).pipe(Effect.as({ _tag: "Accepted" } as const))
        }
      })
      return yield* Effect.flip(Control.connect("127.0.0.1", port, "not the secret"))
    })))
    expect(error._tag).toBe("LinkAuthError")
    expect(called).toBe(0)
  })
})
