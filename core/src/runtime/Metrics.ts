/** Counters of one vertex instance, read by `Job.metrics`. */
export interface InstanceMetrics {
  readonly vertex: string
  readonly instance: number
  readonly recordsIn: number
  readonly recordsOut: number
  readonly batchesIn: number
  readonly batchesOut: number
  /** Events that arrived behind the watermark (dropped, or sent to the window's late-events sink). */
  readonly lateEvents: number
  /** Times a connector of this instance retried its server. */
  readonly retries: number
  /** Records a stage rejected (failed to decode, or its function threw) and sent to its dead-letter sink. */
  readonly deadLetters: number
  /** The watermark this instance last passed downstream (-Infinity before the first). */
  readonly watermark: number
  /** Fill of each input queue: items now, the most ever held, and the bound. */
  readonly queues: ReadonlyArray<{ readonly size: number; readonly highWater: number; readonly capacity: number }>
}

export interface JobMetrics {
  readonly instances: ReadonlyArray<InstanceMetrics>
  /** Times the job restarted from a snapshot after a failure. */
  readonly restarts: number
}

/** Mutable counters a tasklet bumps once per batch. */
export class Counters {
  recordsIn = 0
  recordsOut = 0
  batchesIn = 0
  batchesOut = 0
  lateEvents = 0
  retries = 0
  deadLetters = 0
  watermark = -Infinity
}
