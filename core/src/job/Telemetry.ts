/**
 * Tributary's metrics as Effect metrics (`effect`'s `Metric`), so that
 * `PrometheusMetrics` or `OtlpMetrics` export them beside a user's own. A
 * job publishes them each sampling interval, not per batch: the tasklets'
 * counters stay plain numbers. Names follow Jet's (`receivedCount`,
 * `emittedCount`, `coalescedWm`...); every series carries the attributes
 * `job`, `vertex` and `instance`.
 */
import { Effect, Metric } from "effect"
import type { InstanceMetrics, JobMetrics } from "../runtime/Metrics.ts"

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })
const gauge = (name: string, description: string) => Metric.gauge(name, { description })

/** Per instance, counted since the job started (an execution after a restart counts on). */
const counters = {
  receivedCount: counter("tributary_received_count", "Records into a vertex instance (for a source vertex: records its source read)"),
  emittedCount: counter("tributary_emitted_count", "Records out of a vertex instance (for a sink vertex: records written)"),
  lateEventsCount: counter("tributary_late_events_count", "Events behind the watermark"),
  deadLettersCount: counter("tributary_dead_letters_count", "Records rejected by a stage and sent to its dead-letter sink"),
  retriesCount: counter("tributary_connector_retries_count", "Times a connector retried its server")
} satisfies Record<string, Metric.Counter<number>>

const gauges = {
  coalescedWm: gauge("tributary_coalesced_wm", "The watermark an instance last passed downstream (epoch ms)"),
  watermarkLag: gauge("tributary_watermark_lag_ms", "Now minus the instance's watermark, in ms"),
  queueFill: gauge("tributary_queue_fill", "The fullest input queue of an instance, as a fraction of its bound (backpressure)"),
  busyTime: gauge("tributary_busy_time_ms_per_second", "Of each second of the last sampling interval, the ms an instance worked"),
  idleTime: gauge("tributary_idle_time_ms_per_second", "Of each second of the last sampling interval, the ms an instance waited for input"),
  backPressuredTime: gauge("tributary_back_pressured_time_ms_per_second", "Of each second of the last sampling interval, the ms an instance waited for room downstream")
}

const restarts = gauge("tributary_restarts", "Times the job restarted from a snapshot")
const snapshotsCompleted = gauge("tributary_snapshots_completed", "Snapshots completed (in the kept history)")
const lastSnapshotDuration = gauge("tributary_last_snapshot_duration_ms", "Duration of the newest completed snapshot")
const lastSnapshotBytes = gauge("tributary_last_snapshot_bytes", "Bytes of the newest completed snapshot")

/** The names of the Effect metrics a job publishes, for documentation and tests. */
export const names: ReadonlyArray<string> = [
  ...Object.values(counters),
  ...Object.values(gauges),
  restarts,
  snapshotsCompleted,
  lastSnapshotDuration,
  lastSnapshotBytes
].map((m) => m.id)

type Counted = keyof typeof counters
const counted: Record<Counted, (m: InstanceMetrics) => number> = {
  receivedCount: (m) => m.recordsIn,
  emittedCount: (m) => m.recordsOut,
  lateEventsCount: (m) => m.lateEvents,
  deadLettersCount: (m) => m.deadLetters,
  retriesCount: (m) => m.retries
}

/**
 * Publishes `metrics` of job `job`. `last` holds what was published of each
 * instance before: counters grow by the difference (a fresh execution's
 * counters start again from 0, so a smaller value is all new).
 */
export const publish = (job: string, metrics: JobMetrics, last: Map<string, InstanceMetrics>): Effect.Effect<void> =>
  Effect.suspend(() => {
    const updates: Array<Effect.Effect<void>> = []
    for (const m of metrics.instances) {
      const key = `${m.vertex}#${m.instance}`
      const attributes = { job, vertex: m.vertex, instance: String(m.instance) }
      const before = last.get(key)
      last.set(key, m)
      for (const name of Object.keys(counters) as Array<Counted>) {
        const now = counted[name](m)
        const was = before ? counted[name](before) : 0
        const delta = now >= was ? now - was : now
        if (delta > 0) updates.push(Metric.update(Metric.withAttributes(counters[name], attributes), delta))
      }
      if (Number.isFinite(m.watermark)) updates.push(Metric.update(Metric.withAttributes(gauges.coalescedWm, attributes), m.watermark))
      if (m.watermarkLag !== undefined) updates.push(Metric.update(Metric.withAttributes(gauges.watermarkLag, attributes), m.watermarkLag))
      let fill = 0
      for (const q of m.queues) fill = Math.max(fill, q.size / q.capacity)
      updates.push(Metric.update(Metric.withAttributes(gauges.queueFill, attributes), fill))
      updates.push(Metric.update(Metric.withAttributes(gauges.busyTime, attributes), m.busyTimeMsPerSecond))
      updates.push(Metric.update(Metric.withAttributes(gauges.idleTime, attributes), m.idleTimeMsPerSecond))
      updates.push(Metric.update(Metric.withAttributes(gauges.backPressuredTime, attributes), m.backPressuredTimeMsPerSecond))
    }
    const attributes = { job }
    updates.push(Metric.update(Metric.withAttributes(restarts, attributes), metrics.restarts))
    const completed = metrics.snapshots.filter((s) => s.status === "completed")
    updates.push(Metric.update(Metric.withAttributes(snapshotsCompleted, attributes), completed.length))
    const newest = completed.at(-1)
    if (newest) {
      updates.push(Metric.update(Metric.withAttributes(lastSnapshotDuration, attributes), newest.duration ?? 0))
      updates.push(Metric.update(Metric.withAttributes(lastSnapshotBytes, attributes), newest.bytes))
    }
    return Effect.all(updates, { discard: true })
  })
