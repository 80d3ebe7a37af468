/**
 * The NEXMark event stream (Beam's generator rules, see docs/benchmarks.md):
 * event number `n` is a Person when `n % 50 == 0`, an Auction when 1..3, a Bid
 * otherwise. Every event is a pure function of `(seed, n)`: its randomness is
 * seeded per event, so parallel source instances generate disjoint slices of
 * one stream and any event can be regenerated.
 */
import { Effect } from "effect"
import { Source } from "../../core/src/index.ts"

export interface Person {
  readonly kind: "person"
  readonly id: number
  readonly name: string
  readonly emailAddress: string
  readonly creditCard: string
  readonly city: string
  readonly state: string
  readonly dateTime: number
  readonly extra: string
}

export interface Auction {
  readonly kind: "auction"
  readonly id: number
  readonly itemName: string
  readonly description: string
  readonly initialBid: number
  readonly reserve: number
  readonly dateTime: number
  readonly expires: number
  readonly seller: number
  readonly category: number
  readonly extra: string
}

export interface Bid {
  readonly kind: "bid"
  readonly auction: number
  readonly bidder: number
  readonly price: number
  readonly channel: string
  readonly url: string
  readonly dateTime: number
  readonly extra: string
}

export type Event = Person | Auction | Bid

export interface Config {
  /** Seeds every event's randomness (default 0). */
  readonly seed?: number | undefined
  /** Events in the stream; unbounded when omitted. */
  readonly count?: number | undefined
  /** Event-time rate: event `n` happens at `baseTime + n * 1000 / eventsPerSecond` ms (default 10 000). */
  readonly eventsPerSecond?: number | undefined
  /** Event time of event 0, in ms (default 0). */
  readonly baseTime?: number | undefined
  /** Emit each event when the wall clock reaches its event time (default: as fast as possible). */
  readonly realTime?: boolean | undefined
  /** Events are shuffled within groups of this many (default 1: in order); not a multiple of 953. */
  readonly outOfOrderGroupSize?: number | undefined
  /** A bid's auction is the hot one unless `rand(ratio) == 0` (default 2: p = 1/2). */
  readonly hotAuctionRatio?: number | undefined
  /** A bid's bidder is a hot person unless `rand(ratio) == 0` (default 4: p = 3/4). */
  readonly hotBiddersRatio?: number | undefined
  /** An auction's seller is a hot person unless `rand(ratio) == 0` (default 4: p = 3/4). */
  readonly hotSellersRatio?: number | undefined
}

const PROPORTION = 50
const FIRST_ID = 1000
const HOT_AUCTION_RATIO = 100
const HOT_PERSON_RATIO = 100
const IN_FLIGHT_AUCTIONS = 100
const ACTIVE_PEOPLE = 1000
const ID_LEAD = 10

const STATES = ["AZ", "CA", "ID", "OR", "WA", "WY"]
const CITIES = ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"]
const FIRST_NAMES = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"]
const LAST_NAMES = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"]
const CHANNELS = ["Google", "Facebook", "Baidu", "Apple"]
const URLS = Array.from({ length: 64 }, (_, i) => `https://www.nexmark.com/item.htm?query=${i}&channel_id=${(i * 7919) % 10_007}`)
const ITEMS = Array.from({ length: 64 }, (_, i) => `item-${(i * 2654435761) >>> 20}`)
const DESCRIPTIONS = Array.from({ length: 64 }, (_, i) => `${ITEMS[i]} in good condition, ${"as new ".repeat(i % 8)}`)
/** Padding so records average about 200 (person), 500 (auction) and 100 (bid) bytes, without a string per event. */
const pads = (average: number) => Array.from({ length: 32 }, (_, i) => "x".repeat(Math.round(average * (0.5 + i / 31))))
const PERSON_EXTRA = pads(100)
const AUCTION_EXTRA = pads(380)
const BID_EXTRA = pads(40)

// Per-event randomness: a mulberry32 stream seeded by a hash of (seed, n). Its state
// lives in a typed array: a module-level `let` holding a 32-bit value would box it
// as a heap number on every write, which more than doubled the cost of a draw.
const state = new Int32Array(1)
const reseed = (seed: number, n: number) => {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ (n >>> 0) ^ Math.imul(Math.floor(n / 4294967296), 0xc2b2ae35)
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  state[0] = h ^ (h >>> 16)
}
/** 32 random bits. */
const bits = () => {
  const s = (state[0]! + 0x6d2b79f5) | 0
  state[0] = s
  let t = Math.imul(s ^ (s >>> 15), 1 | s)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return (t ^ (t >>> 14)) >>> 0
}
const random = () => bits() / 4294967296
const int = (n: number) => Math.floor(random() * n)
const pick = <A>(xs: ReadonlyArray<A>): A => xs[int(xs.length)]!
/** `10^(i / 1024)`: `Math.exp` costs ~40 ns here, more than the rest of a bid. */
const POW10 = Float64Array.from({ length: 6 * 1024 + 2 }, (_, i) => 10 ** (i / 1024))
/** Log-uniform in cents, `round(10^(U*6) * 100)`, interpolated in the table (relative error < 1e-6). */
const price = () => {
  const x = bits() * ((6 * 1024) / 4294967296)
  const i = Math.floor(x)
  return Math.round((POW10[i]! + (POW10[i + 1]! - POW10[i]!) * (x - i)) * 100) | 0
}

/** Base-0 id of the last person created at or before event `n`. */
const lastPerson = (n: number) => Math.floor(n / PROPORTION)
/** Base-0 id of the last auction created at or before event `n`. */
const lastAuction = (n: number) => {
  let epoch = Math.floor(n / PROPORTION)
  let offset = n % PROPORTION
  if (offset < 1) {
    epoch--
    offset = 2
  } else if (offset >= 4) offset = 2
  else offset -= 1
  return epoch * 3 + offset
}
/** A person among the ~1000 most recent (or a few not created yet). */
const recentPerson = (n: number) => {
  const people = lastPerson(n) + 1
  const active = Math.min(people, ACTIVE_PEOPLE)
  return people - active + int(active + ID_LEAD)
}
const hotPerson = (n: number) => Math.floor(lastPerson(n) / HOT_PERSON_RATIO) * HOT_PERSON_RATIO

/** A fully resolved configuration: what event generation reads. */
export interface Resolved {
  readonly seed: number
  readonly count: number
  readonly rate: number
  readonly baseTime: number
  readonly realTime: boolean
  readonly group: number
  /** A draw of 32 random bits below this picks a cold (not hot) key: `rand(ratio) == 0`. */
  readonly coldAuction: number
  readonly coldBidder: number
  readonly coldSeller: number
  /** Twice the event time over which ~100 auctions are created: auctions last up to this. */
  readonly auctionSpan: number
}

export const resolve = (config: Config = {}): Resolved => {
  const rate = config.eventsPerSecond ?? 10_000
  const group = config.outOfOrderGroupSize ?? 1
  if (!Number.isInteger(group) || group < 1 || group % 953 === 0) {
    throw new RangeError(`outOfOrderGroupSize must be a positive integer, not a multiple of 953, got ${group}`)
  }
  return {
    seed: config.seed ?? 0,
    count: config.count ?? Infinity,
    rate,
    baseTime: config.baseTime ?? 0,
    realTime: config.realTime ?? false,
    group,
    coldAuction: 4294967296 / (config.hotAuctionRatio ?? 2),
    coldBidder: 4294967296 / (config.hotBiddersRatio ?? 4),
    coldSeller: 4294967296 / (config.hotSellersRatio ?? 4),
    auctionSpan: Math.max(1, Math.floor((2 * ((IN_FLIGHT_AUCTIONS * PROPORTION) / 3) * 1000) / rate))
  }
}

/** Event time of event number `n`. */
export const timeOf = (c: Resolved, n: number) => c.baseTime + Math.floor((n * 1000) / c.rate)

/**
 * The event number at stream position `p`: positions are shuffled within groups
 * (`base + (p * 953) % size`, a permutation as 953 is prime), so event times
 * arrive out of order by up to a group.
 */
export const numberAt = (c: Resolved, p: number) => {
  if (c.group === 1) return p
  const base = p - (p % c.group)
  const size = Math.min(c.group, c.count - base)
  return size % 953 === 0 ? p : base + (((p - base) * 953) % size)
}

/** Event number `n` of the stream. */
export const eventAt = (c: Resolved, n: number): Event => {
  reseed(c.seed, n)
  const dateTime = timeOf(c, n)
  const offset = n % PROPORTION
  if (offset >= 4) {
    const last = lastAuction(n)
    const auction = bits() >= c.coldAuction
      ? Math.floor(last / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
      : Math.max(last - IN_FLIGHT_AUCTIONS, 0) + int(Math.min(last, IN_FLIGHT_AUCTIONS) + 1 + ID_LEAD)
    const bidder = bits() >= c.coldBidder ? hotPerson(n) + 1 : recentPerson(n)
    // One draw for the three small picks (64 URLs, 4 channels, 32 paddings).
    const r = bits()
    return {
      kind: "bid",
      auction: auction + FIRST_ID,
      bidder: bidder + FIRST_ID,
      price: price(),
      channel: CHANNELS[r & 3]!,
      url: URLS[(r >>> 2) & 63]!,
      dateTime,
      extra: BID_EXTRA[(r >>> 8) & 31]!
    }
  }
  if (offset === 0) {
    const first = pick(FIRST_NAMES)
    const last = pick(LAST_NAMES)
    return {
      kind: "person",
      id: lastPerson(n) + FIRST_ID,
      name: `${first} ${last}`,
      emailAddress: `${first.toLowerCase()}${int(1000)}@${last.toLowerCase()}.com`,
      creditCard: `${1000 + int(9000)} ${1000 + int(9000)} ${1000 + int(9000)} ${1000 + int(9000)}`,
      city: pick(CITIES),
      state: pick(STATES),
      dateTime,
      extra: pick(PERSON_EXTRA)
    }
  }
  const initialBid = price()
  const seller = bits() >= c.coldSeller ? hotPerson(n) : recentPerson(n)
  const item = int(ITEMS.length)
  return {
    kind: "auction",
    id: lastAuction(n) + FIRST_ID,
    itemName: ITEMS[item]!,
    description: DESCRIPTIONS[item]!,
    initialBid,
    reserve: initialBid + price(),
    dateTime,
    expires: dateTime + 1 + int(c.auctionSpan),
    seller: seller + FIRST_ID,
    category: 10 + int(5),
    extra: pick(AUCTION_EXTRA)
  }
}

/** Appends the events at positions `from, from + step, ...` below `to` to `out`. */
export const fill = (c: Resolved, from: number, step: number, to: number, out: Array<Event>): number => {
  let p = from
  for (; p < to; p += step) out.push(eventAt(c, numberAt(c, p)))
  return p
}

/** The events of a bounded stream, in stream order (for tests and reference computations). */
export const events = (config: Config & { readonly count: number }): Array<Event> => {
  const out: Array<Event> = []
  fill(resolve(config), 0, 1, config.count, out)
  return out
}

/**
 * The stream as a Tributary source. Instance `i` of `k` makes positions
 * `i, i + k, ...`, a batch per pull; its position is replayable. Events carry
 * their `dateTime` as native event time.
 */
export const source = (config: Config = {}): Source.Source<Event> => {
  const c = resolve(config)
  return Source.make({
    name: "nexmark",
    eventTime: (e: Event) => e.dateTime,
    open: ({ batchSize, instance, instances, restoredPosition }) =>
      Effect.sync(() => {
        let p = typeof restoredPosition === "number" ? restoredPosition : instance
        return {
          position: () => p,
          pull: Effect.suspend(() => {
            if (p >= c.count) return Effect.succeed(undefined)
            let to = Math.min(c.count, p + batchSize * instances)
            if (c.realTime) {
              // Positions whose event time has come: due = (now - base) * rate.
              const due = Math.floor(((Date.now() - c.baseTime) * c.rate) / 1000) + 1
              to = Math.min(to, due)
              if (to <= p) return Effect.as(Effect.sleep(Math.min(100, Math.max(1, Math.ceil(((p - due) * 1000) / c.rate)))), [])
            }
            const batch: Array<Event> = []
            p = fill(c, p, instances, to, batch)
            return Effect.succeed(batch)
          })
        }
      })
  })
}
