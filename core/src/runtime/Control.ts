/**
 * Control items travel on an edge between batches, in order, so a control item
 * separates exactly the records before it from those after it.
 */

/** The input reached its end. */
export class Done {
  readonly _tag = "Done"
}

/** No record with an event time below `time` will follow on this edge. */
export class Watermark {
  readonly _tag = "Watermark"
  readonly time: number
  constructor(time: number) {
    this.time = time
  }
}

/** The producer has had no data for its idle timeout: leave it out of watermark coalescing. */
export class Idle {
  readonly _tag = "Idle"
}

/** Snapshot `id`: the records before it are covered by the snapshot, those after it are not. */
export class Barrier {
  readonly _tag = "Barrier"
  readonly id: number
  constructor(id: number) {
    this.id = id
  }
}

export const DONE = new Done()
export const IDLE = new Idle()

export type Control = Done | Watermark | Idle | Barrier

/** What an edge carries: a batch of records (a plain array) or a control item. */
export type Item = ReadonlyArray<unknown> | Control
