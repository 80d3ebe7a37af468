/** What an operator reads of a job: counts of a fused source, rates, snapshot history, failures, the summary, Effect metrics. */
import { Effect, Layer, Logger, References } from "effect"
import { FetchHttpClient } from "effect/http"
import { OtlpMetrics, OtlpSerialization, PrometheusMetrics } from "effect/observability"
import * as http from "node:http"
import { describe, expect, it } from "vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { Aggregate, Pipeline, Sinks, Sources, Stage, Telemetry, Tributary } from "../core/src/index.ts"

describe("job metrics", () => {
  it("count what a source fused with its stages read, what the sink wrote, and sum it in the summary of run", async () => {
    const out = Sinks.collect<number>()
    const pipeline = Pipeline.from(Sources.fromIterable(Array.from({ length: 1000 }, (_, i) => i))).pipe(
      Stage.filter((n) => n % 2 === 0),
      Stage.writeTo(out)
    )
    const summary = await Effect.runPromise(Tributary.run(pipeline, { name: "fused-count", batchSize: 64 }))
    expect(out.items.length).toBe(500)
    expect(summary).toMatchObject({ job: "fused-count", recordsRead: 1000, recordsWritten: 500, lateEvents: 0, deadLetters: 0, restarts: 0 })
    expect(summary.duration).toBeGreaterThanOrEqual(0)
  })

  it("are Effect metrics too: the Prometheus text has the job's counters, per vertex instance", async () => {
    const pipeline = Pipeline.from(Sources.fromIterable(Array.from({ length: 300 }, (_, i) => i))).pipe(
      Stage.groupingKey((n) => n % 3),
      Stage.aggregate(Aggregate.counting()),
      Stage.writeTo(Sinks.collect())
    )
    const text: string = await Effect.runPromise(Effect.andThen(Tributary.run(pipeline, { name: "prom-job", parallelism: 2 }), PrometheusMetrics.format()))
    const received = text.split("\n").filter((l) => l.startsWith("tributary_received_count{") && l.includes('job="prom-job"'))
    // Every instance of every vertex has a series; the source's count what they read.
    const read = received.filter((l) => /vertex="items/.test(l)).reduce((n, l) => n + Number(l.split(" ").at(-1)), 0)
    expect(read).toBe(300)
    expect(received.length).toBeGreaterThanOrEqual(3)
    expect(text).toContain("# TYPE tributary_emitted_count counter")
  })

  it("with metrics: false, nothing is published (no Prometheus series of the job), yet the job's counters and summary count", async () => {
    const pipeline = Pipeline.from(Sources.fromIterable(Array.from({ length: 300 }, (_, i) => i))).pipe(Stage.writeTo(Sinks.collect()))
    const [summary, text] = await Effect.runPromise(Effect.zip(Tributary.run(pipeline, { name: "unsampled-job", metrics: false }), PrometheusMetrics.format()))
    expect(text).not.toContain('job="unsampled-job"')
    expect(summary).toMatchObject({ recordsRead: 300, recordsWritten: 300 })
  })

  it("reach an OpenTelemetry collector through effect's OtlpMetrics: the job's counters, with job, vertex and instance", async () => {
    // A collector: what it is posted at /v1/metrics (OTLP over HTTP, JSON).
    const posted: Array<any> = []
    const collector = http.createServer((req, res) => {
      let body = ""
      req.on("data", (chunk) => (body += chunk))
      req.on("end", () => {
        if (req.url === "/v1/metrics") posted.push(JSON.parse(body))
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve))
    const url = `http://127.0.0.1:${(collector.address() as { port: number }).port}/v1/metrics`
    const otlp = OtlpMetrics.layer({ url, exportInterval: "100 millis", resource: { serviceName: "tributary-test" } }).pipe(Layer.provide([OtlpSerialization.layerJson, FetchHttpClient.layer]))
    const pipeline = Pipeline.from(Sources.fromIterable(Array.from({ length: 300 }, (_, i) => i))).pipe(Stage.writeTo(Sinks.collect()))
    // The exporter flushes what is left when its layer closes.
    await Effect.runPromise(Effect.provide(Tributary.run(pipeline, { name: "otlp-job", parallelism: 2 }), otlp))
    await new Promise<void>((resolve) => collector.close(() => resolve()))
    const points = posted.flatMap((p) => p.resourceMetrics.flatMap((r: any) => r.scopeMetrics.flatMap((s: any) => s.metrics)))
      .filter((m: any) => m.name === "tributary_received_count")
      .flatMap((m: any) => m.sum.dataPoints)
      .filter((d: any) => d.attributes.some((a: any) => a.key === "job" && a.value.stringValue === "otlp-job"))
    expect(points.length).toBeGreaterThan(0)
    const attribute = (d: any, key: string) => d.attributes.find((a: any) => a.key === key)?.value.stringValue
    expect(new Set(points.map((d: any) => attribute(d, "instance")))).toEqual(new Set(["0", "1"]))
    // The newest point of each source instance: together, the records read.
    const newest = new Map<string, number>()
    for (const d of points) if (/^items/.test(attribute(d, "vertex"))) newest.set(attribute(d, "instance"), Number(d.asDouble ?? d.asInt))
    expect([...newest.values()].reduce((a, b) => a + b, 0)).toBe(300)
  })

  it("give rates over the sampling interval and the watermark's lag, live", async () => {
    const m = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(Sources.generator({ make: (seq) => ({ t: Date.now(), seq }), itemsPerSecond: 2000 })).pipe(
          Stage.withTimestamps((e) => e.t, { allowedLag: 10 }),
          Stage.writeTo(Sinks.collect())
        ),
        { metricsInterval: "100 millis" }
      )
      yield* Effect.sleep(600)
      return yield* job.metrics
    })))
    const source = m.instances.find((i) => i.source !== undefined)!
    expect(source.recordsInRate).toBeGreaterThan(200)
    expect(source.recordsOutRate).toBeGreaterThan(200)
    expect(source.watermarkLag).toBeGreaterThanOrEqual(0)
    expect(source.watermarkLag).toBeLessThan(5000)
  })

  it("say how each instance spends its seconds: a fast source before a slow stage is back-pressured, the slow stage busy, a stage after a slow source idle", async () => {
    const sample = (itemsPerSecond: number | undefined, slow: boolean) =>
      Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const job = yield* Tributary.submit(
          Pipeline.from(Sources.generator({ make: (seq) => seq, itemsPerSecond })).pipe(
            Stage.rebalance,
            // A call of 1 ms per record, 4 at a time: the stage cannot keep up with an unthrottled source.
            Stage.mapEffect((n: number) => (slow ? Effect.as(Effect.sleep(1), n) : Effect.succeed(n)), { concurrency: 4 }),
            Stage.writeTo(Sinks.collect())
          ),
          { metricsInterval: "200 millis", batchSize: 16, parallelism: 1 }
        )
        yield* Effect.sleep(1000)
        const m = yield* job.metrics
        return { source: m.instances.find((i) => i.source !== undefined)!, stage: m.instances.find((i) => i.source === undefined)! }
      })))
    const fast = await sample(undefined, true)
    expect(fast.source.backPressuredTimeMsPerSecond).toBeGreaterThan(500)
    expect(fast.stage.busyTimeMsPerSecond).toBeGreaterThan(500)
    expect(fast.stage.idleTimeMsPerSecond).toBeLessThan(100)
    const trickle = await sample(200, false)
    expect(trickle.stage.idleTimeMsPerSecond).toBeGreaterThan(500)
    expect(trickle.stage.busyTimeMsPerSecond).toBeLessThan(100)
    expect(trickle.source.backPressuredTimeMsPerSecond).toBeLessThan(50)
    for (const i of [fast.source, fast.stage, trickle.source, trickle.stage]) {
      expect(i.busyTimeMsPerSecond + i.idleTimeMsPerSecond + i.backPressuredTimeMsPerSecond).toBeLessThanOrEqual(1000.5)
    }
  })

  it("keep a history of snapshots (id, duration, bytes, status) and of the failures that restarted the job", async () => {
    let failed = false
    const m = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(Sources.generator({ make: (seq) => seq, itemsPerSecond: 5000 })).pipe(
          Stage.map((n: number) => {
            if (n === 2000 && !failed) {
              failed = true
              throw new Error("boom at 2000")
            }
            return n
          }),
          Stage.groupingKey((n) => n % 10),
          Stage.rollingAggregate(Aggregate.counting()),
          Stage.writeTo(Sinks.collect())
        ),
        { name: "history-job", processingGuarantee: "exactly-once", snapshotInterval: "50 millis" }
      )
      while (true) {
        const m = yield* job.metrics
        if (m.restarts > 0 && m.snapshots.filter((s) => s.status === "completed").length >= 3) return m
        yield* Effect.sleep(20)
      }
    })))
    const completed = m.snapshots.filter((s) => s.status === "completed")
    expect(completed.map((s) => s.id)).toEqual([...completed.map((s) => s.id)].sort((a, b) => a - b))
    expect(completed.at(-1)!.bytes).toBeGreaterThan(0)
    // The rolling counts of keys 0 … 9.
    expect(completed.at(-1)!.keys).toBe(10)
    expect(completed.every((s) => s.duration !== undefined && s.duration >= 0 && s.start > 0)).toBe(true)
    expect(m.exceptions).toHaveLength(1)
    expect(m.exceptions[0]).toMatchObject({ restarted: true })
    expect(m.exceptions[0]!.message).toContain("boom at 2000")
  })


  it("a snapshot's alignment: how long a tasklet's first barrier waited for its other inputs", async () => {
    // When instance 1 (the odd numbers) stalled for 300 ms: a snapshot requested meanwhile has its
    // barrier from instance 0 at the aggregates at once, and instance 1's only after the stall.
    let stalledAt: number | undefined
    const m = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const job = yield* Tributary.submit(
        Pipeline.from(Sources.generator({ make: (seq) => seq, itemsPerSecond: 4000 })).pipe(
          Stage.mapEffect((n: number) =>
            n === 1001 ? Effect.as(Effect.andThen(Effect.sync(() => (stalledAt = Date.now())), Effect.sleep(300)), n) : Effect.succeed(n)
          ),
          Stage.groupingKey((n) => n % 10),
          Stage.rollingAggregate(Aggregate.counting()),
          Stage.writeTo(Sinks.collect())
        ),
        { parallelism: 2, batchSize: 64, processingGuarantee: "exactly-once", snapshotInterval: "50 millis" }
      )
      while (true) {
        const m = yield* job.metrics
        const after = m.snapshots.filter((s) => s.status === "completed" && stalledAt !== undefined && s.start > stalledAt + 400)
        if (after.length >= 1 && m.snapshots.filter((s) => s.status === "completed").length >= 3) return m
        yield* Effect.sleep(20)
      }
    })))
    const completed = m.snapshots.filter((s) => s.status === "completed")
    expect(Math.max(...completed.map((s) => s.alignment!))).toBeGreaterThan(1)
    expect(completed.every((s) => s.alignment! <= s.duration!)).toBe(true)
    expect(m.snapshots.filter((s) => s.status === "in-progress").every((s) => s.alignment === undefined)).toBe(true)
  })

  it("every Effect metric a job publishes is documented in docs/operations.md", () => {
    const doc = fs.readFileSync(path.join(import.meta.dirname, "..", "docs", "operations.md"), "utf8")
    expect(Telemetry.names.length).toBeGreaterThan(5)
    for (const name of Telemetry.names) expect(doc, name).toContain(`\`${name}\``)
  })

  it("logs of a stage name the job, the vertex and the instance", async () => {
    const seen: Array<Record<string, unknown>> = []
    const capture = Logger.make((o) => void seen.push({ ...o.fiber.getRef(References.CurrentLogAnnotations) }))
    await Effect.runPromise(Tributary.run(
      Pipeline.from(Sources.fromIterable([1, 2])).pipe(
        Stage.mapEffect((n: number) => Effect.as(Effect.log("seen", n), n)),
        Stage.writeTo(Sinks.collect())
      ),
      { name: "logging-job" }
    ).pipe(Effect.provide(Logger.layer([capture]))))
    expect(seen).toHaveLength(2)
    expect(seen[0]).toEqual({ job: "logging-job", vertex: expect.stringMatching(/^items/), instance: 0 })
  })
})
