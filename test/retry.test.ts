/**
 * Faults at the edge: a source whose server goes away retries with backoff
 * and resumes each split from its position; past the limit the job fails with
 * a ConnectorError naming the connector, the server and the last cause.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { ConnectorError, Pipeline, type Retry, Sinks, SourceError, Splits, Stage, Tributary } from "../core/src/index.ts"

/** Two splits of 100 numbers each, read 10 at a time; `fails(pull)` says whether the n-th pull of any split breaks. */
const flaky = (fails: (pull: number) => boolean, retry: Retry.RetryOptions | undefined) => {
  let pulls = 0
  let opens = 0
  const source = Splits.make({
    name: "flaky",
    bounded: true,
    retry,
    enumerate: () => Effect.succeed([{ id: "a" }, { id: "b" }]),
    open: (split, position) =>
      Effect.sync(() => {
        opens++
        let next = typeof position === "number" ? position : 0
        const base = split.id === "a" ? 0 : 1000
        return {
          position: () => next,
          pull: Effect.suspend(() => {
            if (fails(++pulls)) return Effect.fail(new Error("connection reset by peer"))
            if (next >= 100) return Effect.succeed(undefined)
            const batch = Array.from({ length: 10 }, (_, i) => base + next + i)
            next += 10
            return Effect.succeed(batch)
          })
        }
      })
  })
  return { source, opens: () => opens }
}

const expected = [...Array.from({ length: 100 }, (_, i) => i), ...Array.from({ length: 100 }, (_, i) => 1000 + i)]

describe("a source whose server goes away", () => {
  it("retries, opens the split again at its position, and loses or repeats nothing; the retries are in the metrics", async () => {
    const { source, opens } = flaky((n) => n === 3 || n === 4 || n === 15, { server: "flaky.example:9000", delay: "1 millis" })
    const out = Sinks.collect<number>()
    const metrics = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(Pipeline.from(source).pipe(Stage.writeTo(out)))
      yield* job.join
      return yield* job.metrics
    })))
    expect([...out.items].sort((a, b) => a - b)).toEqual(expected)
    expect(metrics.instances.reduce((n, m) => n + m.retries, 0)).toBe(3)
    // Each failure dropped the split's connection: two first opens, three reopens.
    expect(opens()).toBe(5)
  })

  it("past the limit fails the job with a ConnectorError naming the connector, the server and the last cause", async () => {
    const { source } = flaky((n) => n >= 3, { server: "flaky.example:9000", times: 3, delay: "1 millis" })
    const error = await Effect.runPromise(Effect.flip(Tributary.run(Pipeline.from(source).pipe(Stage.writeTo(Sinks.collect<number>())))))
    expect(error).toBeInstanceOf(ConnectorError)
    expect((error as ConnectorError).message).toBe(`connector "flaky" gave up on flaky.example:9000 after 4 attempts: connection reset by peer`)
  })

  it("a failure that is not retryable fails the job at once", async () => {
    const { source, opens } = flaky((n) => n === 3, { server: "s", delay: "1 millis", retryable: () => false })
    const error = await Effect.runPromise(Effect.flip(Tributary.run(Pipeline.from(source).pipe(Stage.writeTo(Sinks.collect<number>())))))
    expect(error).toBeInstanceOf(SourceError)
    expect(opens()).toBe(1)
  })
})
