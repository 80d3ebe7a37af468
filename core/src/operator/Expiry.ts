import { KeyedMap } from "./KeyedMap.ts"

/**
 * The event time at which each key falls due (a state's ttl, a deadline the
 * state names, a session's end), indexed in buckets of `width` ms, so a
 * watermark visits the keys of the buckets it reached instead of every key.
 * Expiry itself is exact: the width only sets how many not-yet-due keys of
 * the current bucket a watermark looks at.
 */
export class Expiry {
  private readonly dueAt = new KeyedMap<number>()
  /** Bucket → keys marked in it; an entry goes stale when its key's due time moves. */
  private readonly buckets = new Map<number, Array<unknown>>()
  private readonly width: number

  constructor(width: number) {
    this.width = Math.max(1, Math.ceil(width))
  }

  get(key: unknown): number | undefined {
    return this.dueAt.get(key)
  }

  /** Key `key` falls due at `time` (instead of when it did). */
  set(key: unknown, time: number): void {
    this.move(key, this.dueAt.get(key), time)
  }

  /** Like `set`, but never earlier than the key's current due time. */
  extend(key: unknown, time: number): void {
    const before = this.dueAt.get(key)
    if (before === undefined || time > before) this.move(key, before, time)
  }

  delete(key: unknown): void {
    this.dueAt.delete(key)
  }

  /** The keys due by `time` (at most once each), forgotten. */
  expire(time: number): Array<unknown> {
    const expired: Array<unknown> = []
    const again: Array<readonly [unknown, number]> = []
    for (const [bucket, keys] of this.buckets) {
      if (bucket * this.width > time) continue
      this.buckets.delete(bucket)
      for (const key of keys) {
        const due = this.dueAt.get(key)
        if (due === undefined) continue
        if (due <= time) {
          this.dueAt.delete(key)
          expired.push(key)
        } else if (this.bucketOf(due) === bucket) again.push([key, due])
        // otherwise stale: the key is marked in the bucket of its current due time
      }
    }
    for (const [key, due] of again) this.mark(key, due)
    return expired
  }

  /** One lookup per record on the hot path: the caller has the key's current due time. */
  private move(key: unknown, before: number | undefined, time: number): void {
    this.dueAt.set(key, time)
    if (before === undefined || this.bucketOf(before) !== this.bucketOf(time)) this.mark(key, time)
  }

  private bucketOf(time: number): number {
    return Math.floor(time / this.width)
  }

  private mark(key: unknown, time: number): void {
    const bucket = this.bucketOf(time)
    const keys = this.buckets.get(bucket)
    if (keys) keys.push(key)
    else this.buckets.set(bucket, [key])
  }
}
