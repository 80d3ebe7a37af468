/**
 * `tributary`: start a member of a cluster, or submit a job to one.
 *
 *   tributary help
 *   tributary member --cluster <name> --postgres <url> --port <runner port> [--host <interface>]
 *                    [--shard-lock-expiration <ms>]
 *   tributary submit <module> --cluster <name> --postgres <url> [--export <name>] [--name <job>]
 *                    [--guarantee none|at-least-once|exactly-once] [--parallelism <n>]
 *                    [--snapshot-interval <ms>] [--max-failures <n>] [--failure-interval <ms>]
 *                    [--scale-up-delay <ms>] [--wait]
 *
 * A member leaves gracefully on SIGTERM or Ctrl-C (its part of the running job
 * moves to the other members from a terminal snapshot, so nothing is replayed
 * twice); a second signal stops it at once. The cluster secret comes from TRIBUTARY_SECRET (never from the command line,
 * where other users of the machine could read it).
 */
import { Platform, RestartPolicy } from "@tributary/core"
import { Cause, Console, Deferred, Effect } from "effect"

const usage = `usage:
  tributary help
  tributary member --cluster <name> --postgres <url> --port <runner port> [--host <interface>]
                   [--shard-lock-expiration <ms>]
  tributary submit <module> --cluster <name> --postgres <url> [--export <name>] [--name <job>]
                   [--guarantee none|at-least-once|exactly-once] [--parallelism <n>] [--snapshot-interval <ms>]
                   [--max-failures <n>] [--failure-interval <ms>] [--scale-up-delay <ms>] [--wait]
(the cluster secret in TRIBUTARY_SECRET; the job restarts after at most --max-failures failures within
--failure-interval, default 10 within 300000 ms)`

class UsageError extends Error {}

// A cluster across machines keeps its state in PostgreSQL, whose packages are optional (peer) dependencies.
const postgresEntry = Effect.tryPromise({
  try: () => import("./postgres.ts"),
  catch: (cause) =>
    (cause as { code?: string }).code === "ERR_MODULE_NOT_FOUND"
      ? new Error(`a cluster across machines needs PostgreSQL's packages: npm install @effect/sql-pg @tributary/postgres (${(cause as Error).message})`)
      : cause
})

const parse = (args: ReadonlyArray<string>) => {
  const flags = new Map<string, string>()
  const positional: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (!arg.startsWith("--")) positional.push(arg)
    else if (arg === "--wait") flags.set("wait", "true")
    else if (i + 1 < args.length) flags.set(arg.slice(2), args[++i]!)
    else throw new UsageError(`${arg} needs a value`)
  }
  const required = (name: string) => {
    const value = flags.get(name)
    if (value === undefined) throw new UsageError(`--${name} is required`)
    return value
  }
  const number = (name: string) => {
    const value = flags.get(name)
    if (value === undefined) return undefined
    const n = Number(value)
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, got "${value}"`)
    return n
  }
  const millis = (name: string) => {
    const ms = number(name)
    return ms === undefined ? undefined : `${ms} millis` as const
  }
  return { flags, positional, required, number, millis }
}

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

const main = (argv: ReadonlyArray<string>): Effect.Effect<void, unknown> => {
  const [command, ...rest] = argv
  // Help needs no secret and no cluster.
  if (command === "help" || argv.includes("--help") || argv.includes("-h")) return Console.log(usage)
  if (command !== "member" && command !== "submit") throw new UsageError(command ? `unknown command "${command}"` : "no command")
  const { flags, positional, required, number, millis } = parse(rest)
  const cluster = required("cluster")
  const postgres = required("postgres")
  const secret = process.env.TRIBUTARY_SECRET
  if (!secret) throw new UsageError("set the cluster secret in TRIBUTARY_SECRET")
  switch (command) {
    case "member": {
      const port = number("port")
      if (port === undefined) throw new UsageError("--port is required")
      return Effect.flatMap(postgresEntry, ({ Member }) => Member.run({
        cluster,
        postgres,
        secret,
        port,
        host: flags.get("host"),
        shardLockExpiration: millis("shard-lock-expiration"),
        // SIGTERM (and Ctrl-C): leave gracefully; a second one stops at once.
        leave: Deferred.await(leaving())
      }))
    }
    case "submit": {
      const module = positional[0]
      if (!module) throw new UsageError("submit needs the module that exports the pipeline")
      const guarantee = flags.get("guarantee") ?? "none"
      if (guarantee !== "none" && guarantee !== "at-least-once" && guarantee !== "exactly-once") {
        throw new UsageError(`--guarantee must be none, at-least-once or exactly-once, got "${guarantee}"`)
      }
      const { defaultPolicy } = RestartPolicy
      const maxFailures = number("max-failures")
      const failureInterval = millis("failure-interval")
      const restartPolicy = maxFailures === undefined && failureInterval === undefined
        ? undefined
        : RestartPolicy.failureRate(maxFailures ?? defaultPolicy.maxFailures, failureInterval ?? defaultPolicy.interval)
      return Effect.gen(function*() {
        const { Client } = yield* postgresEntry
        const name = yield* Client.submit({
          cluster,
          postgres,
          secret,
          module: /^[a-z]+:|^\//.test(module) ? module : `${process.cwd()}/${module}`,
          export: flags.get("export"),
          name: flags.get("name"),
          processingGuarantee: guarantee,
          parallelism: number("parallelism"),
          snapshotInterval: millis("snapshot-interval"),
          scaleUpDelay: millis("scale-up-delay"),
          restartPolicy
        })
        console.log(`submitted ${name}`)
        if (flags.has("wait")) {
          yield* Client.awaitJob({ cluster, postgres, name })
          console.log(`completed ${name}`)
        }
      })
    }
  }
}

const program = Effect.suspend(() => {
  try {
    return main(process.argv.slice(2))
  } catch (e) {
    return Effect.fail(e)
  }
})

await Effect.runPromise(program.pipe(
  Effect.provide(Platform.layer),
  Effect.matchCauseEffect({
    onSuccess: () => Effect.sync(() => process.exit(0)),
    onFailure: (cause) =>
      Effect.sync(() => {
        const error = Cause.squash(cause)
        console.error(error instanceof UsageError ? `${error.message}\n${usage}` : `tributary: ${error instanceof Error ? error.message : Cause.pretty(cause)}`)
        process.exit(error instanceof UsageError ? 2 : 1)
      })
  })
))
