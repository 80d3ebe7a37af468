/**
 * Q1, Q2 and Q5 without Tributary, over the same generated events: a
 * hand-written loop (the practical ceiling), RxJS and a plain Effect Stream.
 * Each returns the number of results, checked against Tributary's. Events are
 * generated on the fly, in batches of `BATCH` as the Tributary source makes
 * them (the same events, the same cost per event), or read from `pregenerated`
 * to leave generation out.
 */
import { Effect, Option, Stream } from "effect"
import { filter as rxFilter, from, map as rxMap, Observable, type OperatorFunction } from "rxjs"
import { batch, type Bid, type Event, type Resolved } from "./generator.ts"
import { isBid, LAG } from "./queries.ts"

const SIZE = 10_000
const STEP = 2_000
/** Events per generated batch: Tributary's default batch size. */
const BATCH = 1024

/** Q5 by hand: bid counts per auction in 2 s frames; a 10 s window closes when the watermark passes its end. */
export class HotItems {
  private readonly frames = new Map<number, Map<number, number>>()
  private top = -Infinity
  private nextEnd = Infinity

  /** Adds a bid; returns the results of the windows it closed (ordered input: no late bids). */
  add(b: Bid): Array<{ end: number; auction: number; bids: number }> {
    const end = Math.floor(b.dateTime / STEP) * STEP + STEP
    let frame = this.frames.get(end)
    if (frame === undefined) this.frames.set(end, (frame = new Map()))
    frame.set(b.auction, (frame.get(b.auction) ?? 0) + 1)
    if (end < this.nextEnd) this.nextEnd = end
    if (b.dateTime > this.top) this.top = b.dateTime
    return this.closeUpTo(this.top - LAG)
  }

  flush() {
    return this.closeUpTo(Infinity)
  }

  private closeUpTo(watermark: number) {
    const out: Array<{ end: number; auction: number; bids: number }> = []
    while (this.nextEnd <= watermark && this.frames.size > 0) {
      const end = this.nextEnd
      const counts = new Map<number, number>()
      for (let f = end - SIZE + STEP; f <= end; f += STEP) this.frames.get(f)?.forEach((n, a) => counts.set(a, (counts.get(a) ?? 0) + n))
      let max = 0
      counts.forEach((n) => (max = Math.max(max, n)))
      counts.forEach((n, auction) => n === max && out.push({ end, auction, bids: n }))
      this.frames.delete(end - SIZE + STEP)
      this.nextEnd = end + STEP
    }
    return out
  }
}

const q1 = (b: Bid) => ({ auction: b.auction, bidder: b.bidder, price: b.price * 0.908, dateTime: b.dateTime })
const q2 = (e: Event): e is Bid => e.kind === "bid" && e.auction % 123 === 0
const q2map = (b: Bid) => ({ auction: b.auction, price: b.price })

export type Query = "Q1" | "Q2" | "Q5"

export const loop = (c: Resolved, query: Query, pregenerated?: ReadonlyArray<Event>): number => {
  let results = 0
  const hot = new HotItems()
  for (let from = 0; from < c.count; from += BATCH) {
    const to = Math.min(c.count, from + BATCH)
    // Generated: this batch, indexed from 0; pregenerated: the whole array, indexed by position.
    const events = pregenerated ?? batch(c, from, 1, to)
    for (let i = pregenerated ? from : 0, end = i + (to - from); i < end; i++) {
      const e = events[i]!
      if (query === "Q1") {
        if (isBid(e) && q1(e).price >= 0) results++
      } else if (query === "Q2") {
        if (q2(e) && q2map(e).price >= 0) results++
      } else if (isBid(e)) results += hot.add(e).length
    }
  }
  return query === "Q5" ? results + hot.flush().length : results
}

const hotItems: OperatorFunction<Bid, unknown> = (source) =>
  new Observable((sub) => {
    const hot = new HotItems()
    return source.subscribe({
      next: (b) => {
        for (const r of hot.add(b)) sub.next(r)
      },
      error: (e) => sub.error(e),
      complete: () => {
        for (const r of hot.flush()) sub.next(r)
        sub.complete()
      }
    })
  })

export const rx = (c: Resolved, query: Query, pregenerated?: ReadonlyArray<Event>): Promise<number> => {
  const events = pregenerated ? from(pregenerated) : new Observable<Event>((sub) => {
    for (let from = 0; from < c.count && !sub.closed; from += BATCH) {
      for (const e of batch(c, from, 1, Math.min(c.count, from + BATCH))) sub.next(e)
    }
    sub.complete()
  })
  const results: Observable<unknown> = query === "Q1"
    ? events.pipe(rxFilter(isBid), rxMap(q1))
    : query === "Q2"
    ? events.pipe(rxFilter(q2), rxMap(q2map))
    : events.pipe(rxFilter(isBid), hotItems)
  return new Promise((resolve, reject) => {
    let n = 0
    results.subscribe({ next: () => void n++, error: reject, complete: () => resolve(n) })
  })
}

export const stream = (c: Resolved, query: Query, pregenerated?: ReadonlyArray<Event>): Promise<number> => {
  // A batch of events per pull, as the Tributary source makes them.
  const events = pregenerated ? Stream.fromArray(pregenerated) : Stream.paginate(0, (p: number) =>
    Effect.succeed([
      batch(c, p, 1, Math.min(c.count, p + BATCH)),
      p + BATCH < c.count ? Option.some(p + BATCH) : Option.none()
    ] as const))
  const results: Stream.Stream<unknown> = query === "Q1"
    ? events.pipe(Stream.filter(isBid), Stream.map(q1))
    : query === "Q2"
    ? events.pipe(Stream.filter(q2), Stream.map(q2map))
    : events.pipe(
      Stream.filter(isBid),
      Stream.mapAccum(() => new HotItems(), (hot, b: Bid) => [hot, hot.add(b)] as const, { onHalt: (hot) => hot.flush() })
    )
  return Effect.runPromise(Stream.runCount(results))
}
