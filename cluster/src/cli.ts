/**
 * `tributary`, on effect's `cli` module (help, `--completions`, parse errors from it):
 *
 *   tributary member --cluster <name> --postgres <url> --port <runner port> [--host <interface>] [--shard-lock-expiration <ms>]
 *                    [--management-port <port>] [--log-level <level>] [--log-format text|json]
 *   tributary submit <module> --cluster <name> --postgres <url> [--export <name>] [--name <job>] [--guarantee ...]
 *                    [--parallelism <n>] [--snapshot-interval <ms>] [--max-failures <n>] [--failure-interval <ms>]
 *                    [--scale-up-delay <ms>] [--wait]
 *   tributary jobs list | status <id> | cancel <id> | suspend <id> | resume <id> | restart <id> | stop <id> [--no-drain]
 *                  [--url <management server>] [--json]
 *   tributary snapshots list <id> | export <id> <name> | delete <id> <name>   [--url <management server>] [--json]
 *   tributary members [--url <management server>] [--json]
 *
 * A member leaves gracefully on SIGTERM or Ctrl-C (its part of the running job
 * moves to the other members from a terminal snapshot, so nothing is replayed
 * twice); a second signal stops it at once. Secrets come from the environment,
 * never from the command line where other users of the machine could read
 * them: the cluster secret from TRIBUTARY_SECRET, the management token from
 * TRIBUTARY_TOKEN.
 */
import { Platform, RestartPolicy } from "@tributary/core"
import { Cause, Console, Data, Deferred, Effect, Logger, Option, References } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"

/** A mistake on the command line or in the environment, found before anything connects (exit code 2). */
class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

// A cluster across machines keeps its state in PostgreSQL, whose packages are optional (peer) dependencies.
const postgresEntry = Effect.tryPromise({
  try: () => import("./postgres.ts"),
  catch: (cause) =>
    (cause as { code?: string }).code === "ERR_MODULE_NOT_FOUND"
      ? new Error(`a cluster across machines needs PostgreSQL's packages: npm install @effect/sql-pg @tributary/postgres (${(cause as Error).message})`)
      : cause
})

/** Completes on the first SIGTERM or SIGINT, after which those signals have their default effect again. */
const leaving = () => {
  const signalled = Deferred.makeUnsafe<void>()
  const once = () => {
    process.off("SIGTERM", once)
    process.off("SIGINT", once)
    Deferred.doneUnsafe(signalled, Effect.void)
  }
  process.on("SIGTERM", once)
  process.on("SIGINT", once)
  return signalled
}

const fromEnv = (name: string, what: string) =>
  Effect.suspend(() => {
    const value = process.env[name]
    return value ? Effect.succeed(value) : Effect.fail(new UsageError({ message: `set ${what} in ${name}` }))
  })

/** A whole number of milliseconds or items; the flag may be left out. */
const whole = (name: string, description: string) =>
  Flag.Int(name).pipe(
    Flag.filter((n) => n >= 0, (n) => `--${name} must be a whole number, got ${n}`),
    Flag.withDescription(description),
    Flag.optional
  )
const millis = (ms: Option.Option<number>) => Option.getOrUndefined(Option.map(ms, (n) => `${n} millis` as const))

const clusterFlags = {
  cluster: Flag.String("cluster").pipe(Flag.withDescription("the cluster's name")),
  postgres: Flag.String("postgres").pipe(Flag.withDescription("PostgreSQL URL where the cluster keeps its state"))
}

const member = Command.make("member", {
  ...clusterFlags,
  port: Flag.Int("port").pipe(Flag.withDescription("port of this member's runner")),
  host: Flag.String("host").pipe(Flag.withDescription("interface to listen on"), Flag.optional),
  shardLockExpiration: whole("shard-lock-expiration", "ms after which a silent member's shards move"),
  managementPort: whole("management-port", "port of the management server while the coordinator runs here (default 8081)"),
  logLevel: Flag.Literals("log-level", ["Trace", "Debug", "Info", "Warn", "Error", "None"]).pipe(
    Flag.withDescription("the least level logged (default Info)"),
    Flag.withDefault("Info" as const)
  ),
  logFormat: Flag.Literals("log-format", ["text", "json"]).pipe(Flag.withDescription("json: a JSON object a line"), Flag.withDefault("text" as const))
}, (flags) =>
  Effect.gen(function*() {
    const secret = yield* fromEnv("TRIBUTARY_SECRET", "the cluster secret")
    const { Member } = yield* postgresEntry
    yield* Member.run({
      cluster: flags.cluster,
      postgres: flags.postgres,
      secret,
      port: flags.port,
      host: Option.getOrUndefined(flags.host),
      shardLockExpiration: millis(flags.shardLockExpiration),
      management: { port: Option.getOrUndefined(flags.managementPort) },
      // SIGTERM (and Ctrl-C): leave gracefully; a second one stops at once.
      leave: Deferred.await(leaving())
    })
  }).pipe(
    Effect.provideService(References.MinimumLogLevel, flags.logLevel),
    flags.logFormat === "json" ? Effect.provideService(Logger.CurrentLoggers, new Set([Logger.consoleJson])) : (effect) => effect
  )).pipe(Command.withDescription("start a member of a cluster"))

const submit = Command.make("submit", {
  ...clusterFlags,
  module: Argument.String("module").pipe(Argument.withDescription("the module that exports the pipeline")),
  export: Flag.String("export").pipe(Flag.withDescription("the pipeline's export (default: default)"), Flag.optional),
  name: Flag.String("name").pipe(Flag.withDescription("the job's name"), Flag.optional),
  guarantee: Flag.Literals("guarantee", ["none", "at-least-once", "exactly-once"]).pipe(Flag.withDefault("none" as const)),
  parallelism: whole("parallelism", "instances of each vertex"),
  snapshotInterval: whole("snapshot-interval", "ms between snapshots"),
  maxFailures: whole("max-failures", "failures within --failure-interval that fail the job (default 10)"),
  failureInterval: whole("failure-interval", "ms in which --max-failures count (default 300000)"),
  scaleUpDelay: whole("scale-up-delay", "ms a new member waits before the job scales up to it"),
  wait: Flag.Boolean("wait").pipe(Flag.withDescription("wait for the job's end"), Flag.withDefault(false))
}, (flags) =>
  Effect.gen(function*() {
    const { defaultPolicy } = RestartPolicy
    const restartPolicy = Option.isNone(flags.maxFailures) && Option.isNone(flags.failureInterval)
      ? undefined
      : yield* Effect.try({
        try: () =>
          RestartPolicy.failureRate(
            Option.getOrElse(flags.maxFailures, () => defaultPolicy.maxFailures),
            millis(flags.failureInterval) ?? defaultPolicy.interval
          ),
        catch: (e) => e
      })
    const secret = yield* fromEnv("TRIBUTARY_SECRET", "the cluster secret")
    const { Client } = yield* postgresEntry
    const { cluster, postgres, module } = flags
    const name = yield* Client.submit({
      cluster,
      postgres,
      secret,
      module: /^[a-z]+:|^\//.test(module) ? module : `${process.cwd()}/${module}`,
      export: Option.getOrUndefined(flags.export),
      name: Option.getOrUndefined(flags.name),
      processingGuarantee: flags.guarantee,
      parallelism: Option.getOrUndefined(flags.parallelism),
      snapshotInterval: millis(flags.snapshotInterval),
      scaleUpDelay: millis(flags.scaleUpDelay),
      restartPolicy
    })
    yield* Console.log(`submitted ${name}`)
    if (flags.wait) {
      yield* Client.awaitJob({ cluster, postgres, name })
      yield* Console.log(`completed ${name}`)
    }
  })).pipe(Command.withDescription("submit a job to a cluster"))

/** The management server's REST API (`Management.layer`), with the token from TRIBUTARY_TOKEN. */
const management = {
  url: Flag.String("url").pipe(Flag.withDescription("the management server"), Flag.withDefault("http://127.0.0.1:8081")),
  json: Flag.Boolean("json").pipe(Flag.withDescription("print the answer as JSON"), Flag.withDefault(false))
}

const call = (url: string, path: string, method: "GET" | "POST" | "DELETE", payload?: unknown) =>
  Effect.gen(function*() {
    const token = yield* Effect.catch(fromEnv("TRIBUTARY_TOKEN", "the management token"), () =>
      Effect.mapError(fromEnv("TRIBUTARY_SECRET", "the cluster secret"), () =>
        new UsageError({ message: "set the management token in TRIBUTARY_TOKEN (or a cluster's secret in TRIBUTARY_SECRET)" })))
    const headers = { authorization: `Bearer ${token}`, ...(payload === undefined ? {} : { "content-type": "application/json" }) }
    const response = yield* Effect.tryPromise({
      try: () => fetch(`${url}/api${path}`, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) }),
      catch: (cause) => new Error(`cannot reach the management server at ${url}: ${cause instanceof Error ? cause.message : String(cause)}`)
    })
    const body: any = yield* Effect.promise(() => response.json().catch(() => undefined))
    if (response.status === 401) return yield* Effect.fail(new Error(`the management server at ${url} refused the token`))
    if (!response.ok) return yield* Effect.fail(new Error(body?.reason ?? (body?._tag === "JobNotFound" ? `no job "${body.id}"` : `${method} ${path}: ${response.status}`)))
    return body
  })

type JobView = { readonly id: string; readonly name: string; readonly status: string }
const line = (j: JobView) => `${j.id}\t${j.name}\t${j.status}`

const list = Command.make("list", management, ({ url, json }) =>
  Effect.flatMap(call(url, "/jobs", "GET"), (jobs: ReadonlyArray<JobView>) =>
    Console.log(json ? JSON.stringify(jobs) : jobs.map(line).join("\n")))).pipe(Command.withDescription("list the jobs"))

const id = Argument.String("id").pipe(Argument.withDescription("the job's id"))

const status = Command.make("status", { ...management, id }, ({ url, json, id }) =>
  Effect.flatMap(call(url, `/jobs/${id}`, "GET"), (job) =>
    Console.log(json ? JSON.stringify(job) : [
      line(job),
      ...job.graph.vertices.map((v: { name: string; parallelism: number }) => `  ${v.name} ×${v.parallelism}`)
    ].join("\n")))).pipe(Command.withDescription("a job's status and graph"))

const action = (name: "cancel" | "suspend" | "resume" | "restart", description: string) =>
  Command.make(name, { ...management, id }, ({ url, json, id }) =>
    Effect.flatMap(call(url, `/jobs/${id}/${name}`, "POST"), (job: JobView) => Console.log(json ? JSON.stringify(job) : line(job)))).pipe(
      Command.withDescription(description)
    )

const stop = Command.make("stop", {
  ...management,
  id,
  drain: Flag.Boolean("drain").pipe(Flag.withDescription("close every open window and commit before the end (--no-drain: suspend)"), Flag.withDefault(true))
}, ({ url, json, id, drain }) =>
  Effect.flatMap(call(url, `/jobs/${id}/stop?drain=${drain}`, "POST"), (job: JobView) => Console.log(json ? JSON.stringify(job) : line(job)))).pipe(
    Command.withDescription("stop a job with drain")
  )

const jobs = Command.make("jobs").pipe(
  Command.withDescription("watch and steer the jobs of a management server (token in TRIBUTARY_TOKEN)"),
  Command.withSubcommands([
    list,
    status,
    action("cancel", "cancel a job"),
    action("suspend", "suspend a job (a final snapshot)"),
    action("resume", "resume a suspended job"),
    action("restart", "restart a job from its last snapshot"),
    stop
  ])
)

type SnapshotView = {
  readonly id: number
  readonly start: number
  readonly duration: number | null
  readonly bytes: number
  readonly keys: number
  readonly status: string
}

const snapshotList = Command.make("list", { ...management, id }, ({ url, json, id }) =>
  Effect.flatMap(call(url, `/jobs/${id}/snapshots`, "GET"), (snapshots: ReadonlyArray<SnapshotView>) =>
    Console.log(json ? JSON.stringify(snapshots) : snapshots.map((s) =>
      `${s.id}\t${new Date(s.start).toISOString()}\t${s.duration ?? "-"} ms\t${s.bytes} bytes\t${s.keys} keys\t${s.status}`).join("\n")))).pipe(
    Command.withDescription("a job's recent snapshots: id, start, duration, bytes and keys of state, status")
  )

const snapshotExport = Command.make("export", {
  ...management,
  id,
  name: Argument.String("name").pipe(Argument.withDescription("the exported snapshot's name: a job started with initialSnapshot: <name> resumes from it"))
}, ({ url, json, id, name }) =>
  Effect.flatMap(call(url, `/jobs/${id}/snapshots/export`, "POST", { name }), (job: JobView) =>
    Console.log(json ? JSON.stringify(job) : `exported ${name} from ${line(job)}`))).pipe(
    Command.withDescription("take a snapshot of a running job and keep it under a name (Flink's savepoint)")
  )

const snapshotDelete = Command.make("delete", {
  ...management,
  id,
  name: Argument.String("name").pipe(Argument.withDescription("the name a snapshot was exported under"))
}, ({ url, json, id, name }) =>
  Effect.flatMap(call(url, `/jobs/${id}/snapshots/${encodeURIComponent(name)}`, "DELETE"), (job: JobView) =>
    Console.log(json ? JSON.stringify(job) : `deleted ${name} of ${line(job)}`))).pipe(
    Command.withDescription("delete a snapshot exported under a name from the job's snapshot store")
  )

const snapshots = Command.make("snapshots").pipe(
  Command.withDescription("the snapshots of a management server's jobs (token in TRIBUTARY_TOKEN)"),
  Command.withSubcommands([snapshotList, snapshotExport, snapshotDelete])
)

type MemberView = { readonly index: number; readonly host: string; readonly port: number; readonly state: string; readonly coordinator: boolean }

const members = Command.make("members", management, ({ url, json }) =>
  Effect.flatMap(call(url, "/members", "GET"), (all: ReadonlyArray<MemberView>) =>
    Console.log(json ? JSON.stringify(all) : all.map((m) =>
      `${m.index}\t${m.host}:${m.port}\t${m.state}${m.coordinator ? "\tcoordinator" : ""}`).join("\n")))).pipe(
    Command.withDescription("the members of the cluster whose coordinator serves --url (index, link address, state)")
  )

const tributary = Command.make("tributary").pipe(
  Command.withDescription("Tributary: members of a cluster, jobs and their management"),
  Command.withSubcommands([member, submit, jobs, snapshots, members])
)

await Effect.runPromise(Command.runWith(tributary, { version: "0.1.0" })(process.argv.slice(2)).pipe(
  Effect.provide(Platform.layer),
  Effect.matchCauseEffect({
    onSuccess: () => Effect.sync(() => process.exit(0)),
    onFailure: (cause) =>
      Effect.sync(() => {
        const error = Cause.squash(cause)
        // effect's cli module has already shown a parse error with the help.
        if (CliError.isCliError(error)) process.exit(error._tag === "ShowHelp" && error.errors.length === 0 ? 0 : 2)
        console.error(error instanceof UsageError ? error.message : `tributary: ${error instanceof Error ? error.message : Cause.pretty(cause)}`)
        process.exit(error instanceof UsageError ? 2 : 1)
      })
  })
))
