/**
 * The one place in this package that starts processes and talks to them: a
 * member process and its parent exchange messages as lines on stdout and
 * stdin, each a marker and a base64 msgpack body (so state travels as bytes,
 * and anything else the member prints is not taken for a message). Bun and
 * Deno implement `node:child_process`, `node:readline` and `node:buffer`, so
 * this serves all three runtimes.
 */
import { Buffer } from "node:buffer"
import { spawn as spawnChild } from "node:child_process"
import { createInterface } from "node:readline"
import { Cause, Data, Effect, Queue, type Scope } from "effect"
import { Packr } from "msgpackr"

const packr = new Packr({ moreTypes: true })
const MARKER = "\u0001tributary "
const encode = (message: unknown) => `${MARKER}${Buffer.from(packr.pack(message)).toString("base64")}\n`
const decode = (line: string): Record<string, unknown> | undefined =>
  line.startsWith(MARKER) ? packr.unpack(Buffer.from(line.slice(MARKER.length), "base64")) : undefined

export class ProcessError extends Data.TaggedError("ProcessError")<{
  readonly process: string
  readonly reason: string
}> {
  override get message() {
    return `${this.process}: ${this.reason}`
  }
}

export interface Child {
  readonly pid: number
  /** The next message the child sent. */
  readonly message: Effect.Effect<Record<string, unknown>, ProcessError>
  readonly send: (message: unknown) => Effect.Effect<void>
  /** Waits for the child's end: its exit code, or the signal that ended it. */
  readonly exit: Effect.Effect<{ readonly code: number | null; readonly signal: string | null; readonly stderr: string }>
}

// From this repository's sources, a child resolves the workspace packages to their sources
// too ("source" condition); from an installed build, to the build those packages ship.
const conditions = import.meta.url.endsWith(".ts") ? ["--conditions=source"] : []

/** How this runtime runs a member script: the one of this build, or of these sources. */
const runtimeArgs = (): ReadonlyArray<string> => ("Deno" in globalThis ? ["run", "-A", ...conditions] : conditions)

/** How this runtime ran this process's own script (Deno does not report its flags). */
export const ownRuntimeArgs = (): ReadonlyArray<string> => ("Deno" in globalThis ? runtimeArgs() : process.execArgv)

export interface SpawnOptions {
  /** The runtime's arguments before the script (default: what runs a member script of this build). */
  readonly runtimeArgs?: ReadonlyArray<string> | undefined
  /** Pass what the child prints (other than messages) on to this process's stdout and stderr. */
  readonly forwardOutput?: boolean | undefined
}

/** Runs `script` with this process's runtime; the child is killed when the scope closes. */
export const spawn = (
  name: string,
  script: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: SpawnOptions = {}
): Effect.Effect<Child, never, Scope.Scope> =>
  Effect.gen(function*() {
    const messages = yield* Queue.unbounded<Record<string, unknown>, ProcessError>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawnChild(process.execPath, [...(options.runtimeArgs ?? runtimeArgs()), script, ...args], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] })
      ),
      (child) => Effect.sync(() => void (child.exitCode === null && child.signalCode === null && child.kill("SIGKILL")))
    )
    // Writing to a child that just died fails with EPIPE: its exit is what reports that.
    child.stdin!.on("error", () => {})
    let stderr = ""
    child.stderr!.on("data", (data) => {
      stderr = (stderr + String(data)).slice(-4000)
      if (options.forwardOutput) process.stderr.write(data)
    })
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const message = decode(line)
      if (message) Queue.offerUnsafe(messages, message)
      else if (options.forwardOutput) process.stdout.write(`${line}\n`)
    })
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.on("exit", (code, signal) => resolve({ code, signal }))
    )
    // After the child's end, waiting for a message fails (lines printed before it are still delivered).
    void exited.then(({ code, signal }) =>
      Queue.failCauseUnsafe(
        messages,
        Cause.fail(new ProcessError({ process: name, reason: `exited (${signal ?? `code ${code}`}); stderr: ${stderr}` }))
      )
    )
    return {
      pid: child.pid!,
      message: Queue.take(messages),
      send: (message) => Effect.sync(() => void (child.stdin!.writable && child.stdin!.write(encode(message)))),
      exit: Effect.map(Effect.promise(() => exited), (e) => ({ ...e, stderr }))
    }
  })

/** In a member process: the messages its parent writes on stdin. */
export const parentMessages = (): Effect.Effect<Queue.Dequeue<Record<string, unknown>, ProcessError>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const messages = yield* Queue.unbounded<Record<string, unknown>, ProcessError>()
    const lines = createInterface({ input: process.stdin })
    lines.on("line", (line) => {
      const message = decode(line)
      if (message) Queue.offerUnsafe(messages, message)
    })
    // The parent died (or closed the pipe): there is no one left to take orders from.
    lines.on("close", () => Queue.failCauseUnsafe(messages, Cause.fail(new ProcessError({ process: "parent", reason: "closed the pipe" }))))
    yield* Effect.addFinalizer(() => Effect.sync(() => lines.close()))
    return messages
  })

/** In a member process: one message to its parent. */
export const tellParent = (message: unknown) => Effect.sync(() => void process.stdout.write(encode(message)))

/** In a member process: a line on stderr, which its parent reports if the member fails. */
export const complain = (line: string) => Effect.sync(() => console.error(line))

/** Ends this process. */
export const exit = (code: number) => Effect.sync(() => process.exit(code))
