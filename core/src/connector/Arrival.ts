/**
 * What a pull with nothing to hand out waits on: a push-based client (rows or
 * messages arriving in callbacks) wakes it, or it gives up after `timeout`
 * milliseconds so the engine can pull again (barriers, drains). One waiter at
 * a time, as a source's reader is pulled by one tasklet.
 */
import { Effect } from "effect"

export interface Arrival {
  /** Waits for `wake`, at most the timeout. */
  readonly wait: Effect.Effect<void>
  /** Ends the current wait, if any (called from the client's callbacks; cheap when nobody waits). */
  readonly wake: () => void
}

export const make = (timeout: number): Arrival => {
  let waiting: (() => void) | undefined
  return {
    wait: Effect.callback<void>((resume) => {
      const done = () => {
        clearTimeout(timer)
        waiting = undefined
        resume(Effect.void)
      }
      const timer = setTimeout(done, timeout)
      waiting = done
      return Effect.sync(() => {
        clearTimeout(timer)
        waiting = undefined
      })
    }),
    wake: () => waiting?.()
  }
}
