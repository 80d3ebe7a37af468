import { Effect } from "effect"

/**
 * Wakes a tasklet that waits for any of its inputs. A notification that comes
 * while nobody waits is remembered, so "check all inputs, then wait" never
 * misses an item (JavaScript runs the check and the registration atomically).
 */
export class Signal {
  private waiter: (() => void) | undefined = undefined
  private notified = false

  notify(): void {
    const waiter = this.waiter
    if (waiter) {
      this.waiter = undefined
      waiter()
    } else {
      this.notified = true
    }
  }

  readonly wait: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.notified) {
      this.notified = false
      resume(Effect.void)
      return
    }
    this.waiter = () => resume(Effect.void)
    return Effect.sync(() => {
      this.waiter = undefined
    })
  })
}

/** Where a producer offers items: a channel, or the sending end of one whose consumer is on another member. */
export interface Outlet<T> {
  offer(item: T): Effect.Effect<void, unknown>
}

/**
 * A bounded single-producer, single-consumer queue of items between two
 * tasklets. A full channel suspends its producer until the consumer takes an
 * item: this is the backpressure, from the slowest sink back to the sources.
 * The bound is in items, and a batch holds at most the job's batch size
 * records, so a channel holds at most `capacity × batchSize` records.
 */
export class Channel<T> implements Outlet<T> {
  private readonly ring: Array<T | undefined>
  private head = 0
  private count = 0
  private blocked: (() => void) | undefined = undefined
  /** The most items this channel ever held (for metrics and backpressure tests). */
  highWater = 0
  /** Milliseconds its producer waited on it, full (back-pressured); timed only when it waits. */
  blockedMs = 0

  readonly capacity: number
  private readonly consumer: Signal

  constructor(capacity: number, consumer: Signal) {
    this.capacity = capacity
    this.consumer = consumer
    this.ring = new Array(capacity)
  }

  get size(): number {
    return this.count
  }

  /** Adds an item, suspending while the channel is full. */
  offer(item: T): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.size < this.capacity) {
        this.push(item)
        return Effect.void
      }
      const since = performance.now()
      return Effect.andThen(
        Effect.callback<void>((resume) => {
          this.blocked = () => resume(Effect.void)
          return Effect.sync(() => {
            this.blocked = undefined
          })
        }),
        // Until the producer runs again: on a shared thread, the consumer's turn is part of the wait.
        Effect.suspend(() => {
          this.blockedMs += performance.now() - since
          return this.offer(item)
        })
      )
    })
  }

  /** Takes the next item, or `undefined` when the channel is empty. */
  poll(): T | undefined {
    if (this.count === 0) return undefined
    const item = this.ring[this.head]!
    this.ring[this.head] = undefined
    this.head = (this.head + 1) % this.capacity
    this.count--
    const blocked = this.blocked
    if (blocked) {
      this.blocked = undefined
      blocked()
    }
    return item
  }

  private push(item: T): void {
    this.ring[(this.head + this.count) % this.capacity] = item
    this.count++
    if (this.count > this.highWater) this.highWater = this.count
    this.consumer.notify()
  }
}
