/**
 * The one place that knows which JavaScript runtime this is. Everything else
 * reaches the file system, sockets and processes through Effect's platform
 * services, provided here. Bun and Deno implement the Node APIs that
 * `@effect/platform-node` builds on (checked by running the whole test suite
 * on each), so the same services serve all three; a runtime-specific layer can
 * replace them here without touching any other module.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import type { Effect, Layer } from "effect"

export type RuntimeName = "node" | "bun" | "deno"

/** The runtime this process runs on. */
export const runtime: RuntimeName = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node"

/** File system, path, child processes, sockets... for the current runtime. */
export const layer: Layer.Layer<NodeServices.NodeServices> = NodeServices.layer

/**
 * Runs a program as the process's main: logs a failure and sets the exit
 * code, interrupts the program on SIGINT/SIGTERM.
 */
export const runMain = <A, E>(effect: Effect.Effect<A, E>): void => NodeRuntime.runMain(effect)
