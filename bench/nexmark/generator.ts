/**
 * The NEXMark event stream (Beam's generator rules, see docs/benchmarks.md):
 * event number `n` is a Person when `n % 50 == 0`, an Auction when 1..3, a Bid
 * otherwise. Every event is a pure function of `(seed, n)`: its random fields
 * are read from one integer hash of `(seed, n)` (as Jet's generator derives
 * them from the event number), so parallel source instances generate disjoint
 * slices of one stream and any event can be regenerated.
 *
 * It is written for speed, as it bounds every query's figure: no `Math.exp`,
 * no string built per event (pools built once), one class per event kind (one
 * hidden class each, fields always set in the same order) and batches filled
 * by index in one loop that tracks an event's place in its 50-event epoch
 * instead of dividing it out per event.
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
  /** A bid's auction is the hot one unless `rand(ratio) == 0` (default 2: p = 1/2), drawn from 16 bits. */
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

// String pools, built once: an event only picks from them (no string is built per event).
const STATES = ["AZ", "CA", "ID", "OR", "WA", "WY"]
const CITIES = ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"]
const FIRST_NAMES = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"]
const LAST_NAMES = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"]
/** Every first × last name; a person's index `i` picks `NAMES[i]` and one of `EMAILS[i * 16 ..]`. */
const NAMES = FIRST_NAMES.flatMap((first) => LAST_NAMES.map((last) => `${first} ${last}`))
const EMAILS = NAMES.flatMap((name, i) => {
  const [first, last] = name.toLowerCase().split(" ")
  return Array.from({ length: 16 }, (_, j) => `${first}${(i * 31 + j * 617) % 1000}@${last}.com`)
})
const CARDS = Array.from({ length: 4096 }, (_, i) => {
  const four = (k: number) => 1000 + (Math.imul(i * 4 + k + 1, 0x9e3779b1) >>> 0) % 9000
  return `${four(0)} ${four(1)} ${four(2)} ${four(3)}`
})
const CHANNELS = ["Google", "Facebook", "Baidu", "Apple"]
const URLS = Array.from({ length: 64 }, (_, i) => `https://www.nexmark.com/item.htm?query=${i}&channel_id=${(i * 7919) % 10_007}`)
const ITEMS = Array.from({ length: 64 }, (_, i) => `item-${(i * 2654435761) >>> 20}`)
const DESCRIPTIONS = Array.from({ length: 64 }, (_, i) => `${ITEMS[i]} in good condition, ${"as new ".repeat(i % 8)}`)
/** Padding so records average about 200 (person), 500 (auction) and 100 (bid) bytes, without a string per event. */
const pads = (average: number) => Array.from({ length: 32 }, (_, i) => "x".repeat(Math.round(average * (0.5 + i / 31))))
const PERSON_EXTRA = pads(100)
const AUCTION_EXTRA = pads(380)
const BID_EXTRA = pads(40)

// Randomness: one 32-bit hash of (seed, n) per event, and from it a few more words by
// the same finalizer (murmur3's fmix32: two Math.imul and three xor-shifts each), a bid
// four in all. Every random field is read from these words with shifts, masks and
// integer multiplications; there is no generator state, so event n is a pure function
// of (seed, n) and a batch can start anywhere.
const fmix = (h: number) => {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return h ^ (h >>> 16)
}
/** The hash of event `n` (any integer below 2^53) under a mixed seed. */
const hashOf = (seedMix: number, n: number) =>
  fmix(seedMix ^ Math.imul(n | 0, 0x9e3779b1) ^ (n > 0x7fffffff ? Math.imul(Math.floor(n / 4294967296), 0x27d4eb2f) : 0))
/** Further words of an event's hash. */
const W2 = 0x3c6ef372
const W3 = 0x78dde6e4
const W4 = 0xb54cda56 | 0
const W5 = 0xf1bbcdc8 | 0

/** `100 * 10^(6a/256)` and `10^(6b/65536)`: two tables of 2 KB, which stay in the L1 cache. */
const PRICE_HIGH = Float64Array.from({ length: 256 }, (_, a) => 100 * 10 ** ((6 * a) / 256))
const PRICE_MID = Float64Array.from({ length: 256 }, (_, b) => 10 ** ((6 * b) / 65536))
/** `10^(6c/2^32) ≈ 1 + c * PRICE_LOW` for `c < 2^16` (relative error < 3e-8). */
const PRICE_LOW = (6 * Math.LN10) / 4294967296
/**
 * Log-uniform in cents, `round(10^(U*6) * 100)` with `U` the 32 bits of `w` over 2^32:
 * `10^(6U)` split by the top, middle and low bits of `w` into two table entries and a
 * linear term (no `Math.exp`, which costs more than the rest of a bid).
 */
const price = (w: number) =>
  (PRICE_HIGH[w >>> 24]! * PRICE_MID[(w >>> 16) & 255]! * (1 + (w & 0xffff) * PRICE_LOW) + 0.5) | 0
/** A uniform integer below `n` (at most 2^16) from the 16 bits `f`. */
const below = (f: number, n: number) => (f * n) >>> 16
/** `floor(w * n / 2^32)` for a 32-bit word `w` and `n < 2^15`: a uniform integer below `n`, in integer operations. */
const scaled = (w: number, n: number) => (Math.imul(w >>> 16, n) + (Math.imul(w & 0xffff, n) >>> 16)) >>> 16
/** `b` when `mask` is -1, `a` when it is 0: a choice without a branch, which would be mispredicted half the time. */
const choose = (a: number, b: number, mask: number) => a ^ ((a ^ b) & mask)

/** A fully resolved configuration: what event generation reads. */
export interface Resolved {
  readonly seed: number
  /** The seed, hashed: what each event's hash starts from. */
  readonly seedMix: number
  readonly count: number
  readonly rate: number
  readonly baseTime: number
  readonly realTime: boolean
  readonly group: number
  /**
   * 16 random bits below this pick a cold (not hot) key: `rand(ratio) == 0`,
   * i.e. `round(65536 / ratio)` (exact for the default ratios 2 and 4).
   */
  readonly coldAuction: number
  readonly coldBidder: number
  readonly coldSeller: number
  /** Twice the event time over which ~100 auctions are created: auctions last up to this. */
  readonly auctionSpan: number
  /** `auctionSpan / 2^32`: a 32-bit word times this is a uniform draw below `auctionSpan`. */
  readonly auctionSpanScale: number
}

export const resolve = (config: Config = {}): Resolved => {
  const rate = config.eventsPerSecond ?? 10_000
  const group = config.outOfOrderGroupSize ?? 1
  if (!Number.isInteger(group) || group < 1 || group % 953 === 0) {
    throw new RangeError(`outOfOrderGroupSize must be a positive integer, not a multiple of 953, got ${group}`)
  }
  const seed = config.seed ?? 0
  const cold = (ratio: number) => {
    if (!(ratio >= 1)) throw new RangeError(`hot key ratios must be at least 1, got ${ratio}`)
    return Math.round(65536 / ratio)
  }
  const auctionSpan = Math.max(1, Math.floor((2 * ((IN_FLIGHT_AUCTIONS * PROPORTION) / 3) * 1000) / rate))
  return {
    seed,
    seedMix: fmix(Math.imul((seed | 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.floor(seed / 4294967296)),
    count: config.count ?? Infinity,
    rate,
    baseTime: config.baseTime ?? 0,
    realTime: config.realTime ?? false,
    group,
    coldAuction: cold(config.hotAuctionRatio ?? 2),
    coldBidder: cold(config.hotBiddersRatio ?? 4),
    coldSeller: cold(config.hotSellersRatio ?? 4),
    auctionSpan,
    auctionSpanScale: auctionSpan / 4294967296
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

/** A Bid: one class per kind gives every event of a kind one hidden class, its fields set in one order. */
class BidEvent implements Bid {
  declare readonly kind: "bid"
  declare readonly auction: number
  declare readonly bidder: number
  declare readonly price: number
  declare readonly channel: string
  declare readonly url: string
  declare readonly dateTime: number
  declare readonly extra: string
  constructor(auction: number, bidder: number, price: number, channel: string, url: string, dateTime: number, extra: string) {
    this.kind = "bid"
    this.auction = auction
    this.bidder = bidder
    this.price = price
    this.channel = channel
    this.url = url
    this.dateTime = dateTime
    this.extra = extra
  }
}

class PersonEvent implements Person {
  declare readonly kind: "person"
  declare readonly id: number
  declare readonly name: string
  declare readonly emailAddress: string
  declare readonly creditCard: string
  declare readonly city: string
  declare readonly state: string
  declare readonly dateTime: number
  declare readonly extra: string
  constructor(
    id: number,
    name: string,
    emailAddress: string,
    creditCard: string,
    city: string,
    state: string,
    dateTime: number,
    extra: string
  ) {
    this.kind = "person"
    this.id = id
    this.name = name
    this.emailAddress = emailAddress
    this.creditCard = creditCard
    this.city = city
    this.state = state
    this.dateTime = dateTime
    this.extra = extra
  }
}

class AuctionEvent implements Auction {
  declare readonly kind: "auction"
  declare readonly id: number
  declare readonly itemName: string
  declare readonly description: string
  declare readonly initialBid: number
  declare readonly reserve: number
  declare readonly dateTime: number
  declare readonly expires: number
  declare readonly seller: number
  declare readonly category: number
  declare readonly extra: string
  constructor(
    id: number,
    itemName: string,
    description: string,
    initialBid: number,
    reserve: number,
    dateTime: number,
    expires: number,
    seller: number,
    category: number,
    extra: string
  ) {
    this.kind = "auction"
    this.id = id
    this.itemName = itemName
    this.description = description
    this.initialBid = initialBid
    this.reserve = reserve
    this.dateTime = dateTime
    this.expires = expires
    this.seller = seller
    this.category = category
    this.extra = extra
  }
}

/**
 * The keys an epoch's events draw from (base 0); they depend on the epoch only,
 * so a batch recomputes them once per 50 events, with no division per event.
 */
class Keys {
  declare hotAuction: number
  declare auctionBase: number
  declare auctionRange: number
  declare hotPerson: number
  declare personBase: number
  declare personRange: number
  constructor() {
    this.hotAuction = 0
    this.auctionBase = 0
    this.auctionRange = 0
    this.hotPerson = 0
    this.personBase = 0
    this.personRange = 0
  }
  /** The keys of `epoch`'s events. */
  at(epoch: number): this {
    // The last auction created (3 per epoch) before its bids; the hot one among the latest.
    const last = epoch * 3 + 2
    this.hotAuction = last - (last % HOT_AUCTION_RATIO)
    // Cold: among the ~100 most recent auctions, or a few not created yet.
    this.auctionBase = last > IN_FLIGHT_AUCTIONS ? last - IN_FLIGHT_AUCTIONS : 0
    this.auctionRange = (last < IN_FLIGHT_AUCTIONS ? last : IN_FLIGHT_AUCTIONS) + 1 + ID_LEAD
    // People: the epoch's person is the last created; the hot one, or one of the ~1000 most recent.
    this.hotPerson = epoch - (epoch % HOT_PERSON_RATIO)
    const active = epoch + 1 < ACTIVE_PEOPLE ? epoch + 1 : ACTIVE_PEOPLE
    this.personBase = epoch + 1 - active
    this.personRange = active + ID_LEAD
    return this
  }
}

/**
 * The bid, person or auction at `offset` (4..49, 0, 1..3) of its `epoch` of 50
 * events, with `h` its hash and `dateTime` its time: one small function per
 * kind, so the bid's, the hot path's, is inlined into the batch loop. A key is
 * hot unless 16 bits of `h` are below the cold threshold; both keys are computed
 * and one is chosen by a mask, without a branch.
 */
const bidOf = (c: Resolved, k: Keys, h: number, dateTime: number): Bid => {
  // h: the two hot-or-cold draws; a: the cold auction (top 24 bits), channel and URL (low 8);
  // b: the cold bidder (top 24 bits) and padding (low 5); the price from a word of its own.
  const a = fmix(h ^ W2)
  const b = fmix(h ^ W4)
  const auction = choose(k.hotAuction, k.auctionBase + scaled(a & ~0xff, k.auctionRange), ((h & 0xffff) - c.coldAuction) >> 31)
  const bidder = choose(k.hotPerson + 1, k.personBase + scaled(b & ~0xff, k.personRange), ((h >>> 16) - c.coldBidder) >> 31)
  return new BidEvent(
    auction + FIRST_ID,
    bidder + FIRST_ID,
    price(fmix(h ^ W3)),
    CHANNELS[a & 3]!,
    URLS[(a >>> 2) & 63]!,
    dateTime,
    BID_EXTRA[b & 31]!
  )
}

const personOf = (epoch: number, h: number, dateTime: number): Person => {
  const name = below(h & 0xffff, NAMES.length)
  const r = fmix(h ^ W2)
  const s = fmix(h ^ W3)
  return new PersonEvent(
    epoch + FIRST_ID,
    NAMES[name]!,
    EMAILS[name * 16 + ((h >>> 16) & 15)]!,
    CARDS[r & 4095]!,
    CITIES[below(s & 0xffff, CITIES.length)]!,
    STATES[below(s >>> 16, STATES.length)]!,
    dateTime,
    PERSON_EXTRA[(h >>> 20) & 31]!
  )
}

const auctionOf = (c: Resolved, k: Keys, epoch: number, offset: number, h: number, dateTime: number): Auction => {
  const r = fmix(h ^ W4)
  const seller = (h & 0xffff) < c.coldSeller ? k.personBase + scaled(r & ~0x7ff, k.personRange) : k.hotPerson
  const initialBid = price(fmix(h ^ W2))
  return new AuctionEvent(
    epoch * 3 + offset - 1 + FIRST_ID,
    ITEMS[r & 63]!,
    DESCRIPTIONS[r & 63]!,
    initialBid,
    initialBid + price(fmix(h ^ W3)),
    dateTime,
    dateTime + 1 + Math.floor((fmix(h ^ W5) >>> 0) * c.auctionSpanScale),
    seller + FIRST_ID,
    10 + below(h >>> 16, 5),
    AUCTION_EXTRA[(r >>> 6) & 31]!
  )
}

/** Event number `n` of the stream. */
export const eventAt = (c: Resolved, n: number): Event => {
  const epoch = Math.floor(n / PROPORTION)
  const offset = n - epoch * PROPORTION
  const h = hashOf(c.seedMix, n)
  const dateTime = timeOf(c, n)
  if (offset === 0) return personOf(epoch, h, dateTime)
  const keys = new Keys().at(epoch)
  return offset >= 4 ? bidOf(c, keys, h, dateTime) : auctionOf(c, keys, epoch, offset, h, dateTime)
}

/**
 * The events at positions `from, from + step, ...` below `to`, in one array
 * filled by index. In order (no out-of-order groups), an event's epoch and
 * offset, and with an integer rate its time, advance with the position
 * instead of being divided out per event.
 */
export const batch = (c: Resolved, from: number, step: number, to: number): Array<Event> => {
  const count = to > from ? Math.ceil((to - from) / step) : 0
  const out = new Array<Event>(count)
  if (c.group !== 1) {
    for (let i = 0, p = from; i < count; i++, p += step) out[i] = eventAt(c, numberAt(c, p))
    return out
  }
  const seedMix = c.seedMix
  const epochStep = Math.floor(step / PROPORTION)
  const offsetStep = step - epochStep * PROPORTION
  let epoch = Math.floor(from / PROPORTION)
  let offset = from - epoch * PROPORTION
  const keys = new Keys().at(epoch)
  let keysEpoch = epoch
  // timeOf(n) = baseTime + floor(n * 1000 / rate) = baseTime + ms, with n * 1000 = ms * rate + rest.
  const rate = c.rate
  // Exact while n * 1000 < 2^50, where the float division of timeOf cannot round across an integer either.
  const exact = Number.isInteger(rate) && (to - 1) * 1000 < 2 ** 50
  const msStep = Math.floor((step * 1000) / rate)
  const restStep = step * 1000 - msStep * rate
  let ms = Math.floor((from * 1000) / rate)
  let rest = from * 1000 - ms * rate
  for (let i = 0, n = from; i < count; i++, n += step) {
    const h = hashOf(seedMix, n)
    const dateTime = exact ? c.baseTime + ms : timeOf(c, n)
    out[i] = offset >= 4
      ? bidOf(c, keys, h, dateTime)
      : offset === 0
      ? personOf(epoch, h, dateTime)
      : auctionOf(c, keys, epoch, offset, h, dateTime)
    epoch += epochStep
    offset += offsetStep
    if (offset >= PROPORTION) {
      offset -= PROPORTION
      epoch++
    }
    if (epoch !== keysEpoch) keys.at((keysEpoch = epoch))
    ms += msStep
    rest += restStep
    if (rest >= rate) {
      rest -= rate
      ms++
    }
  }
  return out
}

/**
 * The events of a bounded stream, in stream order (for tests, reference
 * computations and pregenerated inputs), in a packed array (`batch` fills a
 * holey one by index: cheaper to make, as cheap to read).
 */
export const events = (config: Config & { readonly count: number }): Array<Event> => {
  const out: Array<Event> = []
  for (const e of batch(resolve(config), 0, 1, config.count)) out.push(e)
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
    bounded: Number.isFinite(c.count),
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
            const events = batch(c, p, instances, to)
            p += events.length * instances
            return Effect.succeed(events)
          })
        }
      })
  })
}
