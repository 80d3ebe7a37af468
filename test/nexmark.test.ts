import { describe, expect, it } from "vitest"
import { type Auction, type Bid, type Config, type Event, events, type Person, source } from "../bench/nexmark/generator.ts"
import * as Q from "../bench/nexmark/queries.ts"
import { Aggregate, Pipeline, Sinks, Stage, Window } from "../core/src/index.ts"
import { runJob, sorted } from "./helpers.ts"

// 100 events/s of event time: 6000 events span 60 s, several 10 s windows.
const ordered: Config & { count: number } = { seed: 7, count: 6000, eventsPerSecond: 100 }
// Shuffled within groups of 97 events (~1 s), well inside the queries' 4 s lag.
const shuffled: Config & { count: number } = { ...ordered, seed: 11, outOfOrderGroupSize: 97 }

/** Runs `query` over the generated stream and collects its output. */
const run = async <B>(config: Config, query: (s: Stage.Stage<any>) => Stage.Stage<B, Stage.Unkeyed, never, never, unknown>, parallelism = 1) => {
  const out = Sinks.collect<B>()
  await runJob(query(Pipeline.from(source(config))).pipe(Stage.writeTo(out)), { parallelism })
  return out.items
}

const bidsOf = (config: Config & { count: number }) => events(config).filter((e): e is Bid => e.kind === "bid")
const groupBy = <A, K>(xs: ReadonlyArray<A>, key: (a: A) => K) => {
  const m = new Map<K, Array<A>>()
  for (const x of xs) {
    const list = m.get(key(x))
    if (list) list.push(x)
    else m.set(key(x), [x])
  }
  return m
}

describe("NEXMark generator", () => {
  it("is deterministic, in Beam's 1:3:46 proportions, and seeded", () => {
    const a = events(ordered)
    expect(events(ordered)).toEqual(a)
    expect(events({ ...ordered, seed: 8 })).not.toEqual(a)
    const kinds = groupBy(a, (e) => e.kind)
    expect([kinds.get("person")!.length, kinds.get("auction")!.length, kinds.get("bid")!.length]).toEqual([120, 360, 5520])
    // Dense ids from 1000, in event order.
    expect(kinds.get("person")!.map((p) => (p as Person).id)).toEqual(Array.from({ length: 120 }, (_, i) => 1000 + i))
    expect(new Set(kinds.get("auction")!.map((x) => (x as Auction).id)).size).toBe(360)
    for (const e of a) expect(e.dateTime).toBe(Math.floor((a.indexOf(e) * 1000) / 100))
  })

  it("shuffles within groups: the same events, out of order by less than a group", () => {
    const inOrder = events({ ...shuffled, outOfOrderGroupSize: 1 })
    const out = events(shuffled)
    expect(sorted(out)).toEqual(sorted(inOrder))
    expect(out).not.toEqual(inOrder)
    let top = -Infinity
    for (const e of out) {
      expect(e.dateTime).toBeGreaterThan(top - 1000)
      top = Math.max(top, e.dateTime)
    }
  })

  it("parallel instances generate disjoint slices of one stream", async () => {
    const got = await run(shuffled, (s) => s, 3)
    expect(got.length).toBe(shuffled.count)
    expect(sorted(got)).toEqual(sorted(events(shuffled)))
  })

  it("carries native event times that windows use", async () => {
    const counts = await run(shuffled, (s) =>
      s.pipe(
        Stage.withNativeTimestamps({ allowedLag: Q.LAG }),
        Stage.groupingKey((e: Event) => e.kind),
        Stage.window(Window.tumbling("10 seconds")),
        Stage.aggregate(Aggregate.counting())
      ), 2)
    const expected = [...groupBy(events(shuffled), (e) => `${e.kind}@${Math.floor(e.dateTime / 10_000)}`)]
    expect(sorted(counts.map((r) => `${r.key}@${r.start / 10_000}=${r.value}`))).toEqual(sorted(expected.map(([k, v]) => `${k}=${v.length}`)))
  })

  it("has hot auctions and bidders", () => {
    const bids = bidsOf(ordered)
    // Hot ids are multiples of 100 (+1 for bidders): p = 1/2 for auctions, 3/4 for bidders, a few more by chance.
    const share = (hot: (b: Bid) => boolean) => bids.filter(hot).length / bids.length
    expect(share((b) => (b.auction - 1000) % 100 === 0)).toBeGreaterThan(0.48)
    expect(share((b) => (b.auction - 1000) % 100 === 0)).toBeLessThan(0.56)
    expect(share((b) => (b.bidder - 1001) % 100 === 0)).toBeGreaterThan(0.73)
    expect(bids.every((b) => b.price >= 100 && b.price <= 100_000_000)).toBe(true)
  })
})

describe("NEXMark queries equal a plain computation", () => {
  it("Q0, Q1, Q2: pass-through, currency conversion, selection", async () => {
    const bids = bidsOf(shuffled)
    expect(sorted(await run(shuffled, Q.q0, 2))).toEqual(sorted(bids))
    expect(sorted(await run(shuffled, Q.q1, 2))).toEqual(
      sorted(bids.map((b) => ({ auction: b.auction, bidder: b.bidder, price: b.price * 0.908, dateTime: b.dateTime })))
    )
    const selected = bids.filter((b) => b.auction % 123 === 0).map((b) => ({ auction: b.auction, price: b.price }))
    expect(selected.length).toBeGreaterThan(0)
    expect(sorted(await run(ordered, Q.q2))).toEqual(sorted(bidsOf(ordered).filter((b) => b.auction % 123 === 0).map((b) => ({ auction: b.auction, price: b.price }))))
    expect(sorted(await run(shuffled, Q.q2, 2))).toEqual(sorted(selected))
  })

  it.each([[ordered, 1], [shuffled, 2]] as const)("Q3: sellers in OR, ID, CA joined with their category-10 auctions (%#)", async (config, parallelism) => {
    const all = events(config)
    const people = new Map<number, Person>()
    for (const e of all) if (e.kind === "person" && ["OR", "ID", "CA"].includes(e.state)) people.set(e.id, e)
    const expected = []
    for (const a of all) {
      const p = a.kind === "auction" && a.category === 10 ? people.get(a.seller) : undefined
      if (p && a.kind === "auction") expected.push({ name: p.name, city: p.city, state: p.state, auction: a.id })
    }
    expect(expected.length).toBeGreaterThan(5)
    expect(sorted(await run(config, Q.q3, parallelism))).toEqual(sorted(expected))
  })

  it("Q4: winning bids of closed auctions, and the running average per category", async () => {
    const all = events(shuffled)
    const bids = groupBy(all.filter((e): e is Bid => e.kind === "bid"), (b) => b.auction)
    const winners = new Map<number, { category: number; price: number }>()
    for (const a of all) {
      if (a.kind !== "auction") continue
      const valid = (bids.get(a.id) ?? []).filter((b) => b.dateTime >= a.dateTime && b.dateTime < a.expires && b.price >= a.reserve)
      if (valid.length > 0) winners.set(a.id, { category: a.category, price: Math.max(...valid.map((b) => b.price)) })
    }
    const expires = new Map(all.flatMap((a) => (a.kind === "auction" ? [[a.id, a.expires] as const] : [])))
    const end = Math.max(...all.map((e) => e.dateTime)) - Q.LAG
    const got = await run(shuffled, Q.winningBids, 2)
    // Closed: every auction that expired well before the last watermark; none after it.
    const mustClose = [...winners.keys()].filter((id) => expires.get(id)! <= end - 100)
    expect(mustClose.length).toBeGreaterThan(20)
    expect(got.map((w) => w.auction).filter((id) => expires.get(id)! <= end - 100).sort()).toEqual(mustClose.sort())
    for (const w of got) {
      expect(expires.get(w.auction)!).toBeLessThanOrEqual(end)
      expect(w).toEqual({ auction: w.auction, ...winners.get(w.auction) })
    }
    const averages = await run(shuffled, Q.q4, 2)
    const last = new Map(averages.map((r) => [r.key, r.value]))
    for (const [category, closed] of groupBy(got, (w) => w.category)) {
      expect(last.get(category)).toBeCloseTo(closed.reduce((s, w) => s + w.price, 0) / closed.length, 6)
    }
    expect(last.size).toBe(new Set(got.map((w) => w.category)).size)
  })

  it.each([[ordered, 1], [shuffled, 2]] as const)("Q5: the auctions with the most bids per sliding window (%#)", async (config, parallelism) => {
    const bids = bidsOf(config)
    const ends = new Set<number>()
    for (const b of bids) for (let end = Math.floor(b.dateTime / 2000) * 2000 + 2000; end - 10_000 <= b.dateTime; end += 2000) ends.add(end)
    const expected = []
    for (const end of ends) {
      const counts = new Map<number, number>()
      for (const b of bids) if (b.dateTime >= end - 10_000 && b.dateTime < end) counts.set(b.auction, (counts.get(b.auction) ?? 0) + 1)
      const max = Math.max(...counts.values())
      for (const [auction, n] of counts) if (n === max) expected.push({ end, auction, bids: n })
    }
    expect(expected.length).toBeGreaterThanOrEqual(ends.size)
    expect(sorted(await run(config, Q.q5, parallelism))).toEqual(sorted(expected))
  })

  it("Q7: the highest bids of each tumbling window", async () => {
    const expected = []
    for (const [w, inWindow] of groupBy(bidsOf(shuffled), (b) => Math.floor(b.dateTime / 10_000))) {
      const max = Math.max(...inWindow.map((b) => b.price))
      for (const b of inWindow) {
        if (b.price === max) expected.push({ end: (w + 1) * 10_000, auction: b.auction, bidder: b.bidder, price: b.price, dateTime: b.dateTime })
      }
    }
    expect(expected.length).toBeGreaterThanOrEqual(6)
    expect(sorted(await run(shuffled, Q.q7, 2))).toEqual(sorted(expected))
  })

  it.each([[ordered, 1], [shuffled, 2]] as const)("Q8: persons who opened an auction in the window they joined in (%#)", async (config, parallelism) => {
    const all = events(config)
    const window = (t: number) => Math.floor(t / 10_000)
    const opened = new Set(all.flatMap((a) => (a.kind === "auction" ? [`${a.seller}@${window(a.dateTime)}`] : [])))
    const expected = all.flatMap((p) =>
      p.kind === "person" && opened.has(`${p.id}@${window(p.dateTime)}`)
        ? [{ id: p.id, name: p.name, start: window(p.dateTime) * 10_000, end: (window(p.dateTime) + 1) * 10_000 }]
        : []
    )
    expect(expected.length).toBeGreaterThan(3)
    expect(sorted(await run(config, Q.q8, parallelism))).toEqual(sorted(expected))
  })

  it("Q11: bids per bidder session", async () => {
    const expected = []
    for (const [bidder, bids] of groupBy(bidsOf(shuffled), (b) => b.bidder)) {
      const times = bids.map((b) => b.dateTime).sort((a, b) => a - b)
      let start = times[0]!
      let n = 0
      for (let i = 0; i < times.length; i++) {
        n++
        if (i + 1 === times.length || times[i + 1]! >= times[i]! + 10_000) {
          expected.push({ bidder, bids: n, start, end: times[i]! + 10_000 })
          start = times[i + 1]!
          n = 0
        }
      }
    }
    expect(expected.length).toBeGreaterThan(50)
    expect(sorted(await run(shuffled, Q.q11, 2))).toEqual(sorted(expected))
  })

  it("Q12: bids per bidder in processing-time windows add up to the bids per bidder", async () => {
    const got = await run(shuffled, Q.q12, 2)
    expect(got.every((r) => r.end - r.start === 10_000)).toBe(true)
    const totals = new Map<number, number>()
    for (const r of got) totals.set(r.bidder, (totals.get(r.bidder) ?? 0) + r.bids)
    const expected = new Map([...groupBy(bidsOf(shuffled), (b) => b.bidder)].map(([k, v]) => [k, v.length]))
    expect(totals).toEqual(expected)
  })
})
