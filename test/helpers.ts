import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type JobOptions, run } from "../core/src/job/Job.ts"
import type { Pipeline } from "../core/src/pipeline/Pipeline.ts"

/** Runs a pipeline to completion as a promise (for plain vitest tests). */
export const runJob = (pipeline: Pipeline<unknown>, options?: JobOptions) => Effect.runPromise(run(pipeline, options))

/** Runs a pipeline and returns how it failed (or throws if it did not). */
export const failureOf = async (pipeline: Pipeline<unknown>, options?: JobOptions): Promise<unknown> => {
  const exit = await Effect.runPromise(Effect.flip(run(pipeline, options)))
  return exit
}

/** Multiset comparison helper: sorted copies. */
export const sorted = <A>(items: ReadonlyArray<A>, compare?: (a: A, b: A) => number): Array<A> =>
  [...items].sort(compare ?? ((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0)))

/** Deterministic pseudo-random numbers for reproducible inputs. */
export const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Word counts of the files in `directory` by a plain loop, independent of the engine. */
export const countWordsByHand = (directory: string): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const file of fs.readdirSync(directory)) {
    for (const word of fs.readFileSync(path.join(directory, file), "utf8").toLowerCase().split(/[^\p{L}\p{N}']+/u)) {
      if (word.length > 0) counts.set(word, (counts.get(word) ?? 0) + 1)
    }
  }
  return counts
}

/** Fails once at each of `points` (counted calls), then never again. */
export const faults = (points: ReadonlyArray<number>) => {
  let calls = 0
  const left = new Set(points)
  return (what: string) => {
    calls++
    if (left.delete(calls)) throw new Error(`injected fault in ${what} (call ${calls})`)
  }
}
