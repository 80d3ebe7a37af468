/**
 * Recovery after a member is killed: a 2-member local cluster runs a keyed
 * job at a fixed rate with exactly-once and a snapshot every second; one
 * member gets SIGKILL. Measured from the kill: until the coordinator has
 * redeployed the job on the member left, and until results flow again (the
 * first batch a sink of the new execution gets).
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { LocalCluster } from "../cluster/src/index.ts"
import { Platform } from "../core/src/index.ts"
import { type Benchmark, type Measurement, percentile } from "./harness.ts"

const jobs = path.join(import.meta.dirname, "cluster-jobs.ts")
const RATE = 100_000

const once = () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-recovery-"))
  process.env.BENCH_OUT = out
  process.env.BENCH_RATE = String(RATE)
  process.env.BENCH_COUNT = String(RATE * 8)
  return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const job = yield* LocalCluster.start({
      module: jobs,
      export: "recovering",
      members: 2,
      processingGuarantee: "exactly-once",
      snapshotInterval: "1 second"
    })
    const status = () => Effect.runSync(job.status)
    yield* Effect.repeat(Effect.sleep("50 millis"), { until: () => status().snapshot >= 3 })
    const killed = Date.now()
    process.kill(status().members[1]!.pid!, "SIGKILL")
    yield* Effect.repeat(Effect.sleep("1 millis"), { until: () => status().execution >= 2 })
    const redeployedAt = Date.now()
    yield* job.join
    // The old execution is cancelled everywhere before the new one is deployed: a batch noted
    // after the redeployment is the new execution's.
    const resumed = fs.readdirSync(out).flatMap((f) => fs.readFileSync(path.join(out, f), "utf8").trim().split("\n"))
      .map(Number)
      .filter((time) => time >= redeployedAt)
      .reduce((first, time) => Math.min(first, time), Infinity)
    fs.rmSync(out, { recursive: true, force: true })
    return { redeployed: redeployedAt - killed, resumed: resumed - killed }
  }).pipe(Effect.provide(Platform.layer))))
}

export const recovery: Benchmark = {
  name: "recovery",
  description: "a 2-member cluster with exactly-once (1 s snapshots): time from a member's SIGKILL to resumed output",
  run: async () => {
    const runs = []
    for (let i = 0; i < 3; i++) runs.push(await once())
    const resumed = runs.map((r) => r.resumed).sort((a, b) => a - b)
    const redeployed = runs.map((r) => r.redeployed).sort((a, b) => a - b)
    const results: Array<Measurement> = [{
      benchmark: "recovery",
      variant: `SIGKILL of 1 of 2 members, ${RATE / 1000}k events/s, keyed rolling count`,
      unit: "ms to resumed output (median of 3)",
      value: percentile(resumed, 50),
      details: {
        "resumed output ms (each run)": resumed.join(", "),
        "redeployed ms (each run)": redeployed.join(", ")
      }
    }]
    return results
  }
}
