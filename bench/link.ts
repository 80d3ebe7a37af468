/**
 * The cluster data link: batches of 1024 `{ key, value, name }` records sent
 * over loopback TCP to a child process (same runtime) that decodes and counts
 * them, for a few receive windows. Encode, socket and decode run on two
 * processes, as between two members.
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { createInterface } from "node:readline"
import { Effect } from "effect"
import { Link } from "../cluster/src/index.ts"
import { bestOf, type Benchmark, check, type Measurement, perSecond } from "./harness.ts"

const BATCH = 1024
const BATCHES = 1000
const SECRET = "benchmark secret"
const runtimeArgs = "Deno" in globalThis ? ["run", "-A", "--conditions=source"] : ["--conditions=source"]

/** Starts bench/link-peer.ts with `window` and resolves its port once it listens. */
const startPeer = (window: number) => {
  const child = spawn(process.execPath, [...runtimeArgs, path.join(import.meta.dirname, "link-peer.ts")], {
    env: { ...process.env, LINK_SECRET: SECRET, LINK_WINDOW: String(window) },
    stdio: ["ignore", "pipe", "inherit"]
  })
  const port = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (line) => resolve(JSON.parse(line).port))
    child.once("exit", (code) => reject(new Error(`link peer exited (${code})`)))
  })
  return { child, port }
}

export const link: Benchmark = {
  name: "link",
  description: `${BATCHES} batches of ${BATCH} records to a child process over the loopback data link`,
  run: async () => {
    const batches = Array.from({ length: BATCHES }, (_, b) =>
      Array.from({ length: BATCH }, (_, i) => ({ key: b * BATCH + i, value: i * 0.25, name: `name-${i % 100}` })))
    const results: Array<Measurement> = []
    for (const window of [64 << 10, 1 << 20, 4 << 20]) {
      const peer = startPeer(window)
      try {
        const port = await peer.port
        await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
          const link = yield* Link.connect({ port, secret: SECRET })
          // All batches and a Done, then the peer's count: the time until every record was decoded there.
          const roundTrip = Effect.gen(function*() {
            for (const batch of batches) yield* link.send(batch)
            yield* link.send({ _tag: "Done" })
            return (yield* link.receive) as ReadonlyArray<number>
          })
          check(`records received (window ${window})`, (yield* roundTrip)[0], BATCHES * BATCH)
          const bytesBefore = link.stats.bytesSent
          const ms = yield* Effect.promise(() => bestOf(3, () => Effect.runPromise(Effect.asVoid(roundTrip))))
          const bytesPerRun = (link.stats.bytesSent - bytesBefore) / 4
          results.push({
            benchmark: "link",
            variant: `window ${window >> 10} KiB`,
            unit: "records/s",
            value: perSecond(BATCHES * BATCH, ms),
            details: {
              "MB/s": (bytesPerRun / 1e6 / ms) * 1000,
              "bytes/record": bytesPerRun / (BATCHES * BATCH),
              "max in flight KiB": link.stats.maxInFlight / 1024
            }
          })
        })))
      } finally {
        peer.child.kill("SIGKILL")
      }
    }
    return results
  }
}
