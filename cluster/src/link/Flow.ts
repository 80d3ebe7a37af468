import { Effect } from "effect"

/**
 * Suspends fibers until a condition holds (credit for a sender, an item for a
 * receiver). The condition is checked when the fiber registers and on every
 * `notify`, so a wake-up between "check" and "wait" is never lost. No polling.
 */
export class Wakeup {
  private readonly waiters = new Set<() => void>()

  notify(): void {
    for (const waiter of this.waiters) waiter()
  }

  /** Returns once `condition()` holds; `onWait` runs if the fiber has to suspend. */
  until(condition: () => boolean, onWait?: () => void): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (condition()) return resume(Effect.void)
      onWait?.()
      const waiter = () => {
        if (!condition()) return
        this.waiters.delete(waiter)
        resume(Effect.void)
      }
      this.waiters.add(waiter)
      return Effect.sync(() => void this.waiters.delete(waiter))
    })
  }
}

/** A FIFO of items without `Array.shift`'s copying. */
export class Fifo<A> {
  private items: Array<A> = []
  private head = 0

  get size(): number {
    return this.items.length - this.head
  }

  push(item: A): void {
    this.items.push(item)
  }

  shift(): A | undefined {
    if (this.head === this.items.length) return undefined
    const item = this.items[this.head]!
    this.items[this.head++] = undefined as A
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    }
    return item
  }

  /** Takes everything queued. */
  drain(): Array<A> {
    const all = this.head === 0 ? this.items : this.items.slice(this.head)
    this.items = []
    this.head = 0
    return all
  }
}
