/**
 * What an operator sees of a running job. Tasklets bump plain counters once
 * per batch; everything else (rates, lag, history) is derived when the
 * metrics are read or sampled, off the hot path.
 */

/** Counters of one vertex instance, read by `Job.metrics`. */
export interface InstanceMetrics {
  readonly vertex: string
  readonly instance: number
  /** The source this vertex reads, when it is a source vertex (fused with the stages after it). */
  readonly source: string | undefined
  /** The sink this vertex writes to, if any. */
  readonly sink: string | undefined
  /** Records in (Jet's `receivedCount`): for a source vertex, the records its source read. */
  readonly recordsIn: number
  /** Records out (`emittedCount`): what the vertex's fused chain emitted; for a sink vertex, the records written. */
  readonly recordsOut: number
  /** Records per second in and out, over the last sampling interval (0 before the first). */
  readonly recordsInRate: number
  readonly recordsOutRate: number
  readonly batchesIn: number
  readonly batchesOut: number
  /**
   * Of each second of the last sampling interval, the milliseconds the instance waited for
   * input (idle), waited for room downstream (back-pressured: Jet's `backPressuredTimeMsPerSecond`),
   * and worked (busy). The rest it waited for its turn on the thread, which the instances of a
   * process share. All 0 before the first interval.
   */
  readonly idleTimeMsPerSecond: number
  readonly backPressuredTimeMsPerSecond: number
  readonly busyTimeMsPerSecond: number
  /** Events that arrived behind the watermark (dropped, or sent to the window's late-events sink). */
  readonly lateEvents: number
  /** Times a connector of this instance retried its server. */
  readonly retries: number
  /** Records a stage rejected (failed to decode, or its function threw) and sent to its dead-letter sink. */
  readonly deadLetters: number
  /** The watermark this instance last passed downstream (`coalescedWm`; -Infinity before the first). */
  readonly watermark: number
  /** Milliseconds between now and the watermark (undefined before the first watermark). */
  readonly watermarkLag: number | undefined
  /** Fill of each input queue: items now, the most ever held, and the bound. */
  readonly queues: ReadonlyArray<{ readonly size: number; readonly highWater: number; readonly capacity: number }>
  /** How far a bounded source got, where it knows (`SourceReader.progress`). */
  readonly progress: { readonly done: number; readonly total: number } | undefined
}

/** One snapshot as the job's coordinator saw it. */
export interface SnapshotInfo {
  readonly id: number
  /** Epoch milliseconds when it was requested. */
  readonly start: number
  /** Milliseconds from request to stored (undefined while in progress). */
  readonly duration: number | undefined
  /** The longest any tasklet's inputs took to align on its barrier, in whole milliseconds (undefined while in progress). */
  readonly alignment: number | undefined
  /** Bytes of operator state it holds. */
  readonly bytes: number
  /** Keyed state entries it holds. */
  readonly keys: number
  readonly status: "in-progress" | "completed" | "failed"
}

/** A failure of the job: one that restarted it from a snapshot, or the one that failed it. */
export interface JobException {
  /** Epoch milliseconds. */
  readonly time: number
  readonly message: string
  /** True when the job restarted from a snapshot after it. */
  readonly restarted: boolean
}

export interface JobMetrics {
  /** Epoch milliseconds when these were read. */
  readonly time: number
  readonly instances: ReadonlyArray<InstanceMetrics>
  /** Times the job restarted from a snapshot after a failure. */
  readonly restarts: number
  /** The newest snapshots, oldest first (at most `HISTORY` of them). */
  readonly snapshots: ReadonlyArray<SnapshotInfo>
  /** The newest failures, oldest first (at most `HISTORY` of them). */
  readonly exceptions: ReadonlyArray<JobException>
}

/** What `Tributary.run` reports at the end of a bounded job. */
export interface JobSummary {
  readonly job: string
  /** Records read by all sources. */
  readonly recordsRead: number
  /** Records written to all sinks (late-event and dead-letter sinks not included). */
  readonly recordsWritten: number
  readonly lateEvents: number
  readonly deadLetters: number
  readonly restarts: number
  /** Milliseconds from submission to the end. */
  readonly duration: number
}

/** Entries kept of each history (snapshots, exceptions). */
export const HISTORY = 100

/** Appends `item`, dropping the oldest beyond `HISTORY`. */
export const remember = <A>(history: Array<A>, item: A): void => {
  history.push(item)
  if (history.length > HISTORY) history.splice(0, history.length - HISTORY)
}

/** Mutable counters a tasklet bumps once per batch. */
export class Counters {
  recordsIn = 0
  recordsOut = 0
  batchesIn = 0
  batchesOut = 0
  lateEvents = 0
  /** The source's retries (set from its reader); the sink's are read from the sink. */
  retries = 0
  sinkRetries: (() => number) | undefined = undefined
  progress: (() => { readonly done: number; readonly total: number }) | undefined = undefined
  deadLetters = 0
  watermark = -Infinity
  /** Milliseconds spent waiting for input (timed around the waits only). */
  idleMs = 0
  /** Milliseconds spent processing batches, back-pressured waits inside included (timed per batch). */
  processMs = 0
}

/** What is sampled of an instance to derive its rates: records in and out, idle, back-pressured and processing ms. */
export type Sampled = readonly [recordsIn: number, recordsOut: number, idleMs: number, backPressuredMs: number, processMs: number]

/** The totals of a job's metrics, for its summary. */
export const summarize = (job: string, metrics: JobMetrics, duration: number): JobSummary => {
  let recordsRead = 0
  let recordsWritten = 0
  let lateEvents = 0
  let deadLetters = 0
  for (const m of metrics.instances) {
    if (m.source !== undefined) recordsRead += m.recordsIn
    if (m.sink !== undefined) recordsWritten += m.recordsOut
    lateEvents += m.lateEvents
    deadLetters += m.deadLetters
  }
  return { job, recordsRead, recordsWritten, lateEvents, deadLetters, restarts: metrics.restarts, duration }
}

/** The summary as one line for a terminal. */
export const formatSummary = (s: JobSummary): string =>
  `job "${s.job}" completed in ${(s.duration / 1000).toFixed(2)} s: ${s.recordsRead} records read, ${s.recordsWritten} written, ` +
  `${s.lateEvents} late events, ${s.deadLetters} dead letters${s.restarts > 0 ? `, ${s.restarts} restarts` : ""}`
