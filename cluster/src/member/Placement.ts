/**
 * Spreads an execution of a job over the members of a cluster: member m
 * (of n) runs instance i of every vertex where i mod n = m, and each channel
 * between instances on different members is a link of its own, opened lazily
 * by the producer. The first item on such a link is a batch
 * `[execution, edge, from, to]` naming its channel; then come the channel's
 * items, up to its Done. Links live as long as their execution: when it ends
 * or is cancelled they close, and a late link naming it is refused.
 */
import type { Channel, Item, Outlet, Placement, Snapshot, Snapshots } from "@tributary/core"
import { Deferred, Effect, Exit, Scope } from "effect"
import * as Link from "../link/Link.ts"

interface ExecutionLinks {
  readonly arrived: Map<string, Deferred.Deferred<Link.Link>>
  readonly scopes: Array<Scope.Closeable>
}

/** Hands each link a member accepts to the execution and channel it names, for as long as the member lives. */
export interface Router {
  readonly arrival: (execution: number, edge: number, from: number, to: number) => Effect.Effect<Link.Link>
  /** The execution is over: its links close, and later ones naming it are refused. */
  readonly retire: (execution: number) => Effect.Effect<void>
}

const keyOf = (edge: number, from: number, to: number) => `${edge}/${from}/${to}`

export const router = (listener: Link.Listener): Effect.Effect<Router, never, Scope.Scope> =>
  Effect.gen(function*() {
    const executions = new Map<number, ExecutionLinks>()
    let retired = 0
    const linksOf = (execution: number) => {
      let e = executions.get(execution)
      if (!e) executions.set(execution, (e = { arrived: new Map(), scopes: [] }))
      return e
    }
    const deferred = (e: ExecutionLinks, key: string) => {
      let d = e.arrived.get(key)
      if (!d) e.arrived.set(key, (d = Deferred.makeUnsafe<Link.Link>()))
      return d
    }
    const acceptOne = Effect.gen(function*() {
      const scope = yield* Scope.make()
      const link = yield* Scope.provide(listener.accept, scope)
      const header = yield* Effect.orElseSucceed(link.receive, () => undefined)
      const [execution, edge, from, to] = (header ?? []) as ReadonlyArray<number>
      if (!header || !Link.isBatch(header) || header.length !== 4 || execution! <= retired) {
        return yield* Scope.close(scope, Exit.void)
      }
      const e = linksOf(execution!)
      e.scopes.push(scope)
      yield* Deferred.succeed(deferred(e, keyOf(edge!, from!, to!)), link)
    })
    yield* Effect.forkScoped(Effect.forever(acceptOne))
    return {
      arrival: (execution, edge, from, to) => Deferred.await(deferred(linksOf(execution), keyOf(edge, from, to))),
      retire: (execution) =>
        Effect.suspend(() => {
          retired = Math.max(retired, execution)
          const e = executions.get(execution)
          executions.delete(execution)
          return Effect.forEach(e?.scopes ?? [], (s) => Scope.close(s, Exit.void), { discard: true })
        })
    }
  })

export interface PlacementOptions {
  readonly execution: number
  /** This member's place among the execution's members. */
  readonly member: number
  /** Where each member's links listen, in the same order. */
  readonly peers: ReadonlyArray<readonly [host: string, port: number]>
  readonly router: Router
  readonly secret: string
  readonly snapshots?: Snapshots | undefined
  readonly restored?: Snapshot | undefined
  /** Told how many tasklets run here once the execution starts. */
  readonly started?: ((tasklets: number) => void) | undefined
}

/** This member's placement for one execution; its links close with the scope. */
export const make = (options: PlacementOptions): Effect.Effect<Placement, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { execution, member, peers, router, secret } = options
    const scope = yield* Effect.scope
    yield* Effect.addFinalizer(() => router.retire(execution))
    const memberOf = (instance: number) => instance % peers.length
    return {
      hosts: (_vertex, instance) => memberOf(instance) === member,
      outlet: (edge, from, to): Outlet<Item> => {
        let link: Link.Link | undefined
        const open = Effect.gen(function*() {
          const [host, port] = peers[memberOf(to)]!
          const opened = yield* Scope.provide(Link.connect({ host, port, secret }), scope)
          yield* opened.send([execution, edge, from, to])
          link = opened
          return opened
        })
        return { offer: (item) => Effect.flatMap(link ? Effect.succeed(link) : open, (l) => l.send(item as Link.LinkItem)) }
      },
      inlet: (edge, from, to, channel: Channel<Item>) =>
        Effect.gen(function*() {
          const link = yield* router.arrival(execution, edge, from, to)
          while (true) {
            const item = yield* link.receive
            yield* channel.offer(item as Item)
            if (!Link.isBatch(item) && item._tag === "Done") return
          }
        }),
      snapshots: options.snapshots,
      restored: options.restored,
      execution,
      started: options.started
    }
  })
