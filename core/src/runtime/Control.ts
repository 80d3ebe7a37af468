/**
 * Control items travel on an edge between batches, in order, so a control item
 * separates exactly the records before it from those after it. Later items
 * (watermarks, snapshot barriers) join `Done` here.
 */
export class Done {
  readonly _tag = "Done"
}

export const DONE = new Done()

export type Control = Done

/** What an edge carries: a batch of records (a plain array) or a control item. */
export type Item = ReadonlyArray<unknown> | Control
