/**
 * Spreads a job over the member processes of a local cluster: member m runs
 * instance i of every vertex where i % members = m, and each channel between
 * instances on different members is a link of its own, opened lazily by the
 * producer. The first item on such a link is a batch `[edge, from, to]`
 * naming its channel; then come the channel's items, up to its Done.
 */
import type { Channel, Item, Outlet, Placement } from "@tributary/core"
import { Deferred, Effect, Scope } from "effect"
import * as Link from "../link/Link.ts"

export interface PlacementOptions {
  readonly member: number
  readonly members: number
  /** Each member's link port, by member index. */
  readonly ports: ReadonlyArray<number>
  readonly listener: Link.Listener
  readonly secret: string
}

const keyOf = (edge: number, from: number, to: number) => `${edge}/${from}/${to}`

/** This member's placement; links accepted and opened live as long as the scope. */
export const make = (options: PlacementOptions): Effect.Effect<Placement, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { member, members, ports, listener, secret } = options
    const scope = yield* Effect.scope
    const arrived = new Map<string, Deferred.Deferred<Link.Link>>()
    const arrival = (key: string) => {
      let d = arrived.get(key)
      if (!d) arrived.set(key, (d = Deferred.makeUnsafe<Link.Link>()))
      return d
    }
    // Accepts the links of remote producers and hands each to the inlet of its channel.
    yield* Effect.forkIn(
      Effect.forever(Effect.gen(function*() {
        const link = yield* Scope.provide(listener.accept, scope)
        const header = yield* link.receive
        if (!Link.isBatch(header) || header.length !== 3) return yield* Effect.die(new Error("a data link must name its channel first"))
        const [edge, from, to] = header as [number, number, number]
        yield* Deferred.succeed(arrival(keyOf(edge, from, to)), link)
      })),
      scope
    )
    const memberOf = (instance: number) => instance % members
    return {
      hosts: (_vertex, instance) => memberOf(instance) === member,
      outlet: (edge, from, to): Outlet<Item> => {
        let link: Link.Link | undefined
        const open = Effect.gen(function*() {
          const opened = yield* Scope.provide(Link.connect({ port: ports[memberOf(to)]!, secret }), scope)
          yield* opened.send([edge, from, to])
          link = opened
          return opened
        })
        return { offer: (item) => Effect.flatMap(link ? Effect.succeed(link) : open, (l) => l.send(item as Link.LinkItem)) }
      },
      inlet: (edge, from, to, channel: Channel<Item>) =>
        Effect.gen(function*() {
          const link = yield* Deferred.await(arrival(keyOf(edge, from, to)))
          while (true) {
            const item = yield* link.receive
            yield* channel.offer(item as Item)
            if (!Link.isBatch(item) && item._tag === "Done") return
          }
        })
    }
  })
