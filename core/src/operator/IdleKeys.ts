import { KeyedMap } from "./KeyedMap.ts"

/**
 * The last event time of each key, to evict the state of keys that have been
 * idle for `ttl` of event time (`mapStateful` and `rollingAggregate` with a ttl).
 */
export class IdleKeys {
  private readonly lastSeen = new KeyedMap<number>()
  readonly ttl: number

  constructor(ttl: number) {
    this.ttl = ttl
  }

  touch(key: unknown, time: number): void {
    const last = this.lastSeen.get(key)
    if (last === undefined || time > last) this.lastSeen.set(key, time)
  }

  lastTime(key: unknown): number | undefined {
    return this.lastSeen.get(key)
  }

  /** The keys idle past `ttl` at watermark `time`, forgotten as they are returned. */
  expire(time: number): Array<unknown> {
    const expired: Array<unknown> = []
    this.lastSeen.forEach((last, k) => {
      if (last + this.ttl <= time) expired.push(k)
    })
    for (const k of expired) this.lastSeen.delete(k)
    return expired
  }
}
