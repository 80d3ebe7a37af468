/**
 * Every core of this machine: runs a pipeline over several member processes
 * on 127.0.0.1 that exchange batches over authenticated, flow-controlled
 * links. Each member imports the module that exports the pipeline (functions
 * do not travel between processes; the module does), hosts its share of every
 * vertex's instances and reads its share of the sources.
 */
import { Data, Effect } from "effect"
import * as Process from "../platform/Process.ts"

export interface LocalClusterOptions {
  /** Path or URL of the module that exports the pipeline. */
  readonly module: string
  /** Its export holding the pipeline (default "pipeline"). */
  readonly export?: string | undefined
  /** Member processes (default: the number of cores). */
  readonly members?: number | undefined
  /** Instances of each vertex per member (default 1). */
  readonly parallelism?: number | undefined
}

/** A member process failed or died: the job fails (there is no recovery across members yet). */
export class MemberError extends Data.TaggedError("MemberError")<{
  readonly member: number
  readonly reason: string
}> {
  override get message() {
    return `member ${this.member}: ${this.reason}`
  }
}

// From the sources, src/local/member.ts; from a build, dist/member.js (an entry of its own).
const memberScript = decodeURIComponent(new URL(import.meta.url.endsWith(".ts") ? "./member.ts" : "./member.js", import.meta.url).pathname)

const randomSecret = () => Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("")

/** Runs the job to its end on `members` processes; the first member to fail fails it and the others are stopped. */
export const run = (options: LocalClusterOptions): Effect.Effect<void, MemberError | Process.ProcessError> =>
  Effect.scoped(Effect.gen(function*() {
    const members = options.members ?? navigator.hardwareConcurrency
    const secret = randomSecret()
    const args = (m: number) => [options.module, options.export ?? "pipeline", String(m), String(members), String(options.parallelism ?? 1)]
    const children = yield* Effect.forEach(
      Array.from({ length: members }, (_, m) => m),
      (m) => Process.spawn(`member ${m}`, memberScript, args(m), { TRIBUTARY_SECRET: secret })
    )
    const ports = yield* Effect.forEach(children, (c) => Effect.map(c.message, (m) => m.port as number))
    yield* Effect.forEach(children, (c) => c.send({ ports }))
    yield* Effect.forEach(
      children,
      (child, member) =>
        Effect.flatMap(child.exit, ({ code, signal, stderr }) =>
          code === 0 ? Effect.void : Effect.fail(new MemberError({ member, reason: `exited (${signal ?? `code ${code}`}): ${stderr.trim().split("\n").slice(-3).join(" | ")}` }))),
      { concurrency: "unbounded", discard: true }
    )
  }))
