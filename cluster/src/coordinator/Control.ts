/**
 * The control plane of a cluster, on effect/rpc over TCP: what members and
 * clients say to the coordinator and what it says to them. Every connection
 * passes the links' handshake over the cluster secret first (`link/Guard.ts`);
 * messages travel as msgpack bodies (snapshots are bytes and maps) in the
 * engine's binary RPC frames.
 * - `Join`: a member joins; the coordinator's messages to it stream back, the
 *   first saying which member it is. The stream ends when either side goes,
 *   which is how the coordinator learns that a member is gone.
 * - `Tell`: a member's message to the coordinator (a member sends them one at a
 *   time, so they arrive in order).
 * - `Submit`: a client hands over a job.
 */
import { RestartPolicy } from "@tributary/core"
import { Cause, Context, Duration, Effect, Layer, Schema, type Scope, Stream } from "effect"
import { Rpc, RpcClient, type RpcClientError, RpcGroup, RpcSerialization, RpcServer } from "effect/rpc"
import { Socket, SocketServer } from "effect/socket"
import { Packr } from "msgpackr"
import * as Auth from "../link/Auth.ts"
import type { LinkAuthError, LinkConnectError, LinkProtocolError } from "../link/Errors.ts"
import { guard, guardedHandler } from "../link/Guard.ts"
import * as Wire from "../link/Wire.ts"
import * as Net from "../platform/Net.ts"
import type { JobSettings } from "./JobCoordinator.ts"
import type { FromMember, ToMember } from "./Protocol.ts"
import * as Registry from "./Registry.ts"

/** A job handed to the coordinator. */
export interface Submission {
  readonly name: string
  readonly module: string
  readonly export: string
  readonly options: Registry.JobOptions
}

/** The submission of a job with these settings (named after its module and the time unless named); fails saying what is wrong. */
export const submission = (settings: JobSettings & { readonly name?: string | undefined }): Effect.Effect<Submission, string> =>
  Effect.try({
    try: () => ({
      name: settings.name ?? `${settings.module.split("/").pop()}-${Date.now()}`,
      module: settings.module,
      export: settings.export ?? "pipeline",
      options: {
        guarantee: settings.processingGuarantee ?? "none",
        parallelism: settings.parallelism ?? 1,
        snapshotIntervalMs: Duration.toMillis(settings.snapshotInterval ?? "10 seconds"),
        scaleUpDelayMs: Duration.toMillis(settings.scaleUpDelay ?? "10 seconds"),
        ...Registry.encodePolicy(RestartPolicy.fromOptions(settings))
      }
    }),
    catch: (e) => (e instanceof Error ? e.message : String(e))
  })

/** The coordinator's answer to a Submit. */
export type SubmitReply = { readonly _tag: "Accepted" } | { readonly _tag: "Rejected"; readonly reason: string }

/** What the coordinator streams to a member: first its place, then its orders. */
export type ToJoined = { readonly _tag: "Welcome"; readonly member: number } | ToMember

const Body = Schema.Uint8Array

export class ControlRpcs extends RpcGroup.make(
  Rpc.make("Join", { payload: { host: Schema.String, port: Schema.Number }, success: Body, stream: true }),
  Rpc.make("Tell", { payload: { member: Schema.Number, message: Body } }),
  Rpc.make("Submit", { payload: { job: Body }, success: Body })
) {}

const packr = new Packr({ moreTypes: true })
const pack = (value: unknown): Uint8Array<ArrayBuffer> => new Uint8Array(packr.pack(value))
const unpack = <A>(body: Uint8Array): A => packr.unpack(body) as A

// Deploy messages carry whole snapshots: no frame limit. Built fresh rather than taken from the
// shared layers: in a member those are the runner's own, memoised.
const serialization = Effect.map(
  Layer.build(Layer.fresh(RpcSerialization.layerSchemaBinary({ maxFrameSize: "unbounded" }))),
  Context.get(RpcSerialization.RpcSerialization)
)

export interface Handlers {
  readonly join: (host: string, port: number) => Stream.Stream<ToJoined>
  readonly tell: (member: number, message: FromMember) => Effect.Effect<void>
  readonly submit: (submission: Submission) => Effect.Effect<SubmitReply>
}

/** Serves the control plane on `host` (a free port) until the scope closes; returns the port. */
export const serve = (options: { readonly host: string; readonly secret: string; readonly handlers: Handlers }) =>
  Effect.gen(function*() {
    const { handlers } = options
    const key = yield* Auth.importSecret(options.secret)
    const server = yield* Net.listen(options.host, 0)
    const guarded = SocketServer.SocketServer.of({
      address: server.address,
      run: (handler) =>
        server.run((socket, peer) =>
          Effect.catchCause(
            guardedHandler(handler, key, "coordinator", peer)(socket),
            (cause) => Effect.logDebug(`coordinator: connection from ${peer} ended: ${Cause.pretty(cause)}`)
          )
        )
    })
    const Handlers = ControlRpcs.toLayer({
      Join: ({ host, port }) => Stream.map(handlers.join(host, port), pack),
      Tell: ({ member, message }) => handlers.tell(member, unpack(message)),
      Submit: ({ job }) => Effect.map(handlers.submit(unpack(job)), pack)
    })
    const protocol = yield* RpcServer.makeProtocolSocketServer.pipe(
      Effect.provideService(SocketServer.SocketServer, guarded),
      Effect.provideService(RpcSerialization.RpcSerialization, yield* serialization)
    )
    yield* Effect.forkScoped(RpcServer.make(ControlRpcs).pipe(Effect.provideService(RpcServer.Protocol, protocol), Effect.provide(Layer.fresh(Handlers))))
    return server.port
  })

export interface ControlClient {
  readonly join: (host: string, port: number) => Stream.Stream<ToJoined, RpcClientError.RpcClientError>
  readonly tell: (member: number, message: FromMember) => Effect.Effect<void, RpcClientError.RpcClientError>
  readonly submit: (submission: Submission) => Effect.Effect<SubmitReply, RpcClientError.RpcClientError>
}

/**
 * A client of the coordinator at `host:port`, for the current scope. It proves
 * the secret on a connection of its own first, so a wrong secret fails here
 * with `LinkAuthError` rather than as a refused RPC later.
 */
export const connect = (host: string, port: number, secret: string): Effect.Effect<ControlClient, LinkConnectError | LinkAuthError | LinkProtocolError, Scope.Scope> =>
  Effect.gen(function*() {
    const key = yield* Auth.importSecret(secret)
    yield* Effect.scoped(Effect.gen(function*() {
      const wire = yield* Wire.connect(host, port, Auth.HANDSHAKE_MAX_FRAME, 2000)
      yield* Effect.ensuring(Auth.connector(wire, key, 0, 5000), wire.destroy)
    }))
    const protocol = yield* RpcClient.makeProtocolSocket().pipe(
      Effect.provideService(Socket.Socket, guard(yield* Net.connect(host, port, 2000), "connector", key, "coordinator")),
      Effect.provideService(RpcSerialization.RpcSerialization, yield* serialization)
    )
    const client = yield* Effect.provideService(RpcClient.make(ControlRpcs), RpcClient.Protocol, protocol)
    return {
      join: (h, p) => Stream.map(client.Join({ host: h, port: p }), (body) => unpack<ToJoined>(body)),
      tell: (member, message) => client.Tell({ member, message: pack(message) }),
      submit: (submission) => Effect.map(client.Submit({ job: pack(submission) }), (body) => unpack<SubmitReply>(body))
    }
  })
