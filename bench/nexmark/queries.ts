/**
 * NEXMark queries over the event stream of `generator.ts`, with the public
 * pipeline API. Each takes the untimed event stage and returns its result
 * stage; windowed queries give the records they keep event times themselves
 * (after filtering, so only those records are wrapped), with Flink's 4 s lag.
 */
import { Aggregate, Stage, Window } from "../../core/src/index.ts"
import type { Auction, Bid, Event, Person } from "./generator.ts"

type Events<R> = Stage.Stage<Event, Stage.Unkeyed, never, R>

export const LAG = 4000
export const isBid = (e: Event): e is Bid => e.kind === "bid"
const byDateTime = <A extends Event, R>(self: Stage.Stage<A, Stage.Unkeyed, never, R>) =>
  Stage.withTimestamps(self, (e) => e.dateTime, { allowedLag: LAG })

/** The records whose `value(record)` is the greatest, ties included (plain data, so snapshottable). */
export const maxAllBy = <A>(value: (a: A) => number) =>
  Aggregate.make({
    name: "maxAllBy",
    create: (): { max: number; items: Array<A> } => ({ max: -Infinity, items: [] }),
    accumulate: (acc, a: A) => {
      const v = value(a)
      if (v > acc.max) return { max: v, items: [a] }
      if (v === acc.max) acc.items.push(a)
      return acc
    },
    combine: (a, b) => (a.max > b.max ? a : b.max > a.max ? b : { max: a.max, items: [...a.items, ...b.items] }),
    export: (acc) => acc.items
  })

/** Q0: pass-through of the bids (the framework's own cost). */
export const q0 = <R>(events: Events<R>) => events.pipe(Stage.filter(isBid))

/** Q1: bid prices converted to euros. */
export const q1 = <R>(events: Events<R>) =>
  events.pipe(
    Stage.filter(isBid),
    Stage.map((b) => ({ auction: b.auction, bidder: b.bidder, price: b.price * 0.908, dateTime: b.dateTime }))
  )

/** Q2: the bids on every 123rd auction. */
export const q2 = <R>(events: Events<R>) =>
  events.pipe(
    Stage.filter((e): e is Bid => e.kind === "bid" && e.auction % 123 === 0),
    Stage.map((b) => ({ auction: b.auction, price: b.price }))
  )

export interface Q3Result {
  readonly name: string
  readonly city: string
  readonly state: string
  readonly auction: number
}

/**
 * Q3: an incremental join, sellers in OR, ID or CA with their auctions in
 * category 10: every match once, whichever of person and auction comes first.
 */
export const q3 = <R>(events: Events<R>) =>
  events.pipe(
    Stage.filter((e): e is Person | Auction =>
      e.kind === "person" ? e.state === "OR" || e.state === "ID" || e.state === "CA" : e.kind === "auction" && e.category === 10),
    Stage.groupingKey((e) => (e.kind === "person" ? e.id : e.seller)),
    Stage.mapStateful(
      () => ({ person: undefined as Person | undefined, waiting: [] as Array<Auction> }),
      (s, e): Array<Q3Result> => {
        if (e.kind === "auction") {
          if (s.person === undefined) s.waiting.push(e)
          return s.person === undefined ? [] : [{ name: s.person.name, city: s.person.city, state: s.person.state, auction: e.id }]
        }
        s.person = e
        const matched = s.waiting.map((a) => ({ name: e.name, city: e.city, state: e.state, auction: a.id }))
        s.waiting = []
        return matched
      }
    ),
    Stage.flatMap((matches) => matches)
  )

export interface WinningBid {
  readonly auction: number
  readonly category: number
  readonly price: number
}

/**
 * The winning bid of every auction once it closed (the watermark passed its
 * `expires`): its highest bid at or above the reserve made while it was open.
 * Bids whose auction has not come yet are kept until the watermark passes
 * them: an auction opened before them would have arrived by then.
 */
export const winningBids = <R>(events: Events<R>) =>
  events.pipe(
    Stage.filter((e): e is Auction | Bid => e.kind !== "person"),
    byDateTime,
    Stage.groupingKey((e) => (e.kind === "auction" ? e.id : e.auction)),
    Stage.mapStateful(
      () => ({ auction: undefined as Auction | undefined, bids: [] as Array<Bid>, latest: -Infinity }),
      (s, e) => {
        if (e.kind === "auction") s.auction = e
        else {
          s.bids.push(e)
          s.latest = Math.max(s.latest, e.dateTime)
        }
        return undefined
      },
      {
        expireAt: (s) => s.auction?.expires ?? s.latest + 1,
        onEvict: ({ auction: a, bids }): WinningBid | undefined => {
          let price = -Infinity
          for (const b of bids) if (a && b.dateTime >= a.dateTime && b.dateTime < a.expires && b.price >= a.reserve && b.price > price) price = b.price
          return price === -Infinity ? undefined : { auction: a!.id, category: a!.category, price }
        }
      }
    )
  )

/** Q4: the running average winning price per category, updated as auctions close. */
export const q4 = <R>(events: Events<R>) =>
  winningBids(events).pipe(
    Stage.groupingKey((w) => w.category),
    Stage.rollingAggregate(Aggregate.averaging((w: WinningBid) => w.price))
  )

/** Q5: hot items, the auctions with the most bids in each 10 s window sliding by 2 s (ties included). */
export const q5 = <R>(events: Events<R>) =>
  events.pipe(
    Stage.filter(isBid),
    byDateTime,
    Stage.groupingKey((b) => b.auction),
    Stage.window(Window.sliding("10 seconds", "2 seconds")),
    Stage.aggregate(Aggregate.counting()),
    Stage.groupingKey((r) => r.end),
    Stage.window(Window.tumbling("2 seconds")),
    Stage.aggregate(maxAllBy((r: Stage.WindowResult<number, number>) => r.value)),
    Stage.flatMap((w) => w.value.map((r) => ({ end: r.end, auction: r.key, bids: r.value })))
  )

/** Q7: highest bid, the bids with the top price of each 10 s tumbling window. */
export const q7 = <R>(events: Events<R>) =>
  events.pipe(
    Stage.filter(isBid),
    byDateTime,
    Stage.window(Window.tumbling("10 seconds")),
    Stage.aggregate(maxAllBy((b: Bid) => b.price)),
    Stage.flatMap((w) => w.value.map((b) => ({ end: w.end, auction: b.auction, bidder: b.bidder, price: b.price, dateTime: b.dateTime })))
  )

/** Q8: new users, the persons who opened an auction in the 10 s tumbling window they joined in. */
export const q8 = <R>(events: Events<R>) =>
  events.pipe(
    Stage.filter((e): e is Person | Auction => e.kind !== "bid"),
    byDateTime,
    Stage.groupingKey((e) => (e.kind === "person" ? e.id : e.seller)),
    Stage.window(Window.tumbling("10 seconds")),
    Stage.aggregate(Aggregate.allOf({
      name: Aggregate.flatMapping((e: Person | Auction) => (e.kind === "person" ? [e.name] : []), Aggregate.pickAny()),
      auctions: Aggregate.filtering((e: Person | Auction) => e.kind === "auction", Aggregate.counting())
    })),
    Stage.filter((w) => w.value.name !== undefined && w.value.auctions > 0),
    Stage.map((w) => ({ id: w.key, name: w.value.name!, start: w.start, end: w.end }))
  )

/** Q11: user sessions, bids per bidder per session (10 s gap). */
export const q11 = <R>(events: Events<R>) =>
  events.pipe(
    Stage.filter(isBid),
    byDateTime,
    Stage.groupingKey((b) => b.bidder),
    Stage.window(Window.session("10 seconds")),
    Stage.aggregate(Aggregate.counting()),
    Stage.map((w) => ({ bidder: w.key, bids: w.value, start: w.start, end: w.end }))
  )

/** Q12: bids per bidder per 10 s tumbling window of processing time. */
export const q12 = <R>(events: Events<R>) =>
  events.pipe(
    Stage.filter(isBid),
    Stage.withIngestionTimestamps,
    Stage.groupingKey((b) => b.bidder),
    Stage.window(Window.tumbling("10 seconds")),
    Stage.aggregate(Aggregate.counting()),
    Stage.map((w) => ({ bidder: w.key, bids: w.value, start: w.start, end: w.end }))
  )
