/**
 * A member of a cluster: an effect/cluster runner (registered, health-checked
 * and given shards through the runner storage in PostgreSQL) that may host the
 * cluster's coordinator singleton, and an agent that joins whichever member
 * runs the coordinator and runs the executions it deploys. Membership and
 * failover are the engine's: the coordinator moves when its runner's shard
 * lock expires, and waits for the runners the engine sees alive.
 */
import { NodeCrypto } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { PostgresSnapshotStore } from "@tributary/postgres"
import { Cause, type Duration, Effect, Layer, Option, Queue, Redacted, Schedule, Stream } from "effect"
import { RunnerAddress, RunnerStorage, ShardingConfig, Singleton, SqlMessageStorage, SqlRunnerStorage } from "effect/cluster"
import * as ClusterCoordinator from "../coordinator/ClusterCoordinator.ts"
import type * as ClusterManagement from "../coordinator/ClusterManagement.ts"
import * as Control from "../coordinator/Control.ts"
import type { FromMember, ToMember } from "../coordinator/Protocol.ts"
import * as Registry from "../coordinator/Registry.ts"
import * as Link from "../link/Link.ts"
import * as Agent from "../member/Agent.ts"
import * as RunnerTransport from "./RunnerTransport.ts"

export interface MemberOptions {
  /** The cluster's name: members of one cluster share it (and its PostgreSQL database). */
  readonly cluster: string
  /** PostgreSQL: runner storage, the registry, snapshots. */
  readonly postgres: string
  /** The cluster secret: every link between members, and to the coordinator, proves it. */
  readonly secret: string
  /** The interface to listen on (default 127.0.0.1). */
  readonly host?: string | undefined
  /** The runner's port (effect/cluster's own traffic); links use free ports on the same interface. */
  readonly port: number
  /** When this completes the member leaves gracefully: its part of the running job moves to the others first. */
  readonly leave?: Effect.Effect<void> | undefined
  /**
   * How long a runner that stopped refreshing its shard locks (dead, or stalled) keeps its
   * shards, the coordinator's among them (default 2 seconds; the locks are refreshed every third
   * of it). Shorter moves the coordinator of a dead member sooner; too short moves it away from
   * a member that merely paused (a long GC, a saturated machine, a slow database), which
   * redeploys its jobs.
   */
  readonly shardLockExpiration?: Duration.Input | undefined
  /**
   * Where the management server (REST API, `/metrics`, dashboard; its token is the cluster
   * secret) listens while the coordinator runs in this member: default port 8081 on `host`.
   */
  readonly management?: ClusterManagement.ClusterManagementOptions | undefined
}

/**
 * The prefix of the cluster's effect/cluster tables: each Tributary cluster is a cluster of
 * its own for the engine (runners, shard locks, singletons), even in a shared database.
 */
export const tablePrefix = (cluster: string): string => {
  const name = cluster.toLowerCase().replace(/[^a-z0-9_]/g, "_")
  if (name.length <= 28) return `tributary_${name}`
  // PostgreSQL names are at most 63 bytes: a long cluster name is cut and told apart by a hash.
  let hash = 2166136261
  for (let i = 0; i < cluster.length; i++) hash = Math.imul(hash ^ cluster.charCodeAt(i), 16777619)
  return `tributary_${name.slice(0, 20)}_${(hash >>> 0).toString(36)}`
}

/** Joins the coordinator (wherever it runs now) and serves it; again when it moves. Ends on Exit. */
const agent = (options: MemberOptions, host: string, listener: Link.Listener) =>
  Effect.gen(function*() {
    const address = yield* Effect.repeat(Registry.coordinator(options.cluster), {
      until: (a) => a !== undefined,
      schedule: Schedule.spaced("200 millis")
    })
    return yield* Effect.scoped(Effect.gen(function*() {
      const control = yield* Control.connect(address!.host, address!.port, options.secret)
      const orders = yield* Queue.unbounded<Control.ToJoined, string>()
      // However the orders end (the coordinator moved, stopped or died: its stream fails, ends or is
      // interrupted), the agent then fails, and joins the next coordinator.
      yield* Effect.forkScoped(Stream.runForEach(control.join(host, listener.port), (m) => Queue.offer(orders, m)).pipe(
        Effect.exit,
        Effect.andThen(Queue.fail(orders, "the coordinator ended the connection"))
      ))
      const welcome = yield* Queue.take(orders)
      if (welcome._tag !== "Welcome") return yield* Effect.fail(`the coordinator said ${welcome._tag} first`)
      yield* Effect.logInfo(`member: joined the coordinator at ${address!.host}:${address!.port} (epoch ${address!.epoch})`)
      // One sender keeps the member's messages in order.
      const outbox = yield* Queue.unbounded<FromMember>()
      yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(outbox), (m) => control.tell(welcome.member, m))))
      if (options.leave) yield* Effect.forkScoped(Effect.andThen(options.leave, Queue.offer(outbox, { _tag: "Leave" })))
      yield* Agent.serve({
        receive: Queue.take(orders) as Effect.Effect<ToMember, unknown>,
        tell: (message) => void Queue.offerUnsafe(outbox, message),
        listener,
        secret: options.secret
      })
    }))
  }).pipe(
    // The coordinator moved or is moving: the execution stopped with the connection; join the next one.
    Effect.tapCause((cause) => Effect.logDebug(`member: no coordinator (${Cause.pretty(cause).split("\n")[0]}); joining the next`)),
    Effect.retry(Schedule.spaced("200 millis"))
  )

/** Runs a member until it is told to leave (or interrupted). */
export const run = (options: MemberOptions): Effect.Effect<void, unknown> => {
  const host = options.host ?? "127.0.0.1"
  const shardingConfig = {
    runnerAddress: Option.some(RunnerAddress.make(host, options.port)),
    shardLockExpiration: options.shardLockExpiration ?? "2 seconds",
    shardLockRefreshInterval: "1 second",
    refreshAssignmentsInterval: "500 millis",
    runnerHealthCheckInterval: "1 second"
  } as const
  const Pg = PgClient.layer({ url: Redacted.make(options.postgres) })
  const prefix = tablePrefix(options.cluster)
  const Storage = Layer.mergeAll(SqlMessageStorage.layerWith({ prefix }), Layer.orDie(SqlRunnerStorage.layerWith({ prefix }))).pipe(
    Layer.provide([ShardingConfig.layer(shardingConfig), NodeCrypto.layerDigest]),
    Layer.provideMerge(Pg)
  )
  const Runner = RunnerTransport.layer(options.secret, shardingConfig).pipe(Layer.provideMerge(Storage))
  const Coordinator = (linkPort: number) => Singleton.make(
    `tributary-coordinator/${options.cluster}`,
    Effect.scoped(Effect.gen(function*() {
      const store = yield* PostgresSnapshotStore.make({ url: options.postgres })
      // The engine's view of its runners.
      const runners = yield* RunnerStorage.RunnerStorage
      yield* ClusterCoordinator.run({
        cluster: options.cluster,
        host,
        secret: options.secret,
        store,
        ownMember: [host, linkPort],
        liveRunners: Effect.map(runners.getRunners, (all) => all.filter(([, healthy]) => healthy).length),
        management: options.management ?? {}
      })
    })).pipe(
      // A singleton whose body fails would not start again until the next rebalance.
      Effect.tapCause((cause) => Effect.logWarning(`coordinator failed, restarting: ${Cause.pretty(cause)}`)),
      Effect.retry(Schedule.spaced("1 second"))
    )
  )
  return Effect.scoped(Effect.gen(function*() {
    // Listening first: the coordinator, if it runs here, knows its own member by this address.
    const listener = yield* Link.listen({ host, secret: options.secret })
    yield* agent(options, host, listener).pipe(Effect.provide(Coordinator(listener.port).pipe(Layer.provideMerge(Runner))))
  }))
}
