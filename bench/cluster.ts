/**
 * Every core through a local cluster: the stateless and the sliding-window
 * jobs on 1 and 2 member processes, events/s over the whole run (process
 * start-up included), and the speed-up of 2 members over 1. Beside them, the
 * machine's ceiling: two independent 1-member jobs at once, each over half the
 * records (nothing exchanged, nothing coordinated between them).
 */
import { Effect } from "effect"
import * as path from "node:path"
import { LocalCluster } from "../cluster/src/index.ts"
import type { Benchmark, Measurement } from "./harness.ts"

const jobs = path.join(import.meta.dirname, "cluster-jobs.ts")

/** Seconds to run `job` over `count` records on `members` processes (`copies` such jobs at once), start-up included. */
const seconds = async (job: string, count: number, members: number, copies = 1) => {
  process.env.BENCH_COUNT = String(count)
  const start = performance.now()
  await Effect.runPromise(Effect.all(Array.from({ length: copies }, () => LocalCluster.run({ module: jobs, export: job, members })), { concurrency: "unbounded" }))
  return (performance.now() - start) / 1000
}

export const cluster: Benchmark = {
  name: "cluster",
  description: "stateless and sliding-window jobs on 1 and 2 member processes, and 2 independent 1-member jobs",
  run: async () => {
    const results: Array<Measurement> = []
    for (const [job, count] of [["stateless", 400_000_000], ["windowed", 30_000_000]] as const) {
      const rates = []
      for (const members of [1, 2]) {
        // Start-up: processes, module imports, links: the same job over a handful of records.
        const startUp = await seconds(job, members, members)
        const total = await seconds(job, count, members)
        rates.push({ members, startUp, withStartUp: count / total, running: count / (total - startUp) })
      }
      const [one, two] = rates
      for (const r of rates) {
        results.push({
          benchmark: "cluster",
          variant: `${job}, ${r.members} member${r.members > 1 ? "s" : ""}`,
          unit: "events/s",
          value: r.withStartUp,
          details: {
            "start-up s": r.startUp,
            "M events/s without start-up": r.running / 1e6,
            ...(r === two ? { "speed-up": `${(two!.withStartUp / one!.withStartUp).toFixed(2)}× (${(two!.running / one!.running).toFixed(2)}× without start-up)` } : {})
          }
        })
      }
      // The ceiling: two 1-member jobs side by side, each over half the records.
      const apart = await seconds(job, count / 2, 1, 2)
      const startUpApart = await seconds(job, 1, 1, 2)
      results.push({
        benchmark: "cluster",
        variant: `${job}, 2 independent 1-member jobs (ceiling)`,
        unit: "events/s",
        value: count / apart,
        details: {
          "M events/s without start-up": count / (apart - startUpApart) / 1e6,
          "vs 1 member": `${(count / apart / one!.withStartUp).toFixed(2)}× (${(count / (apart - startUpApart) / one!.running).toFixed(2)}× without start-up)`
        }
      })
    }
    return results
  }
}
