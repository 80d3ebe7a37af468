/**
 * The cluster data link against a real second OS process (test/fixtures/link-peer.ts,
 * started with this runtime's binary) on 127.0.0.1: order and completeness,
 * byte-counted flow control, authentication, and a peer killed with SIGKILL.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { createInterface } from "node:readline"
import { Effect, Fiber, Logger } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Link, type LinkItem } from "../cluster/src/index.ts"
import { decodeItem, encodeFrame, encodeItem, type Frame, FrameDecoder } from "../cluster/src/link/Frame.ts"
import { rng } from "./helpers.ts"

const fixture = path.join(import.meta.dirname, "fixtures", "link-peer.ts")
const runtimeArgs = "Deno" in globalThis ? ["run", "-A", "--conditions=source"] : ["--conditions=source"]
const SECRET = "correct horse battery staple"

interface Peer {
  readonly child: ChildProcess
  /** The first JSON line the peer printed that has `key`. */
  readonly message: (key: string, timeoutMs?: number) => Promise<Record<string, any>>
  readonly exited: Promise<number | null>
}

const peers: Array<Peer> = []
afterEach(() => {
  for (const peer of peers.splice(0)) peer.child.kill("SIGKILL")
})

const startPeer = (mode: string, env: Record<string, string>): Peer => {
  const child = spawn(process.execPath, [...runtimeArgs, fixture, mode], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const messages: Array<Record<string, any>> = []
  const listeners = new Set<() => void>()
  let stderr = ""
  let exitCode: number | null | undefined
  child.stderr!.on("data", (data) => (stderr += String(data)))
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (!line.startsWith("{")) return
    messages.push(JSON.parse(line))
    listeners.forEach((l) => l())
  })
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      exitCode = code
      // stdout may still hold lines: let readline deliver them before waiters give up.
      setTimeout(() => listeners.forEach((l) => l()), 100)
      resolve(code)
    })
  )
  const message = (key: string, timeoutMs = 10_000) =>
    new Promise<Record<string, any>>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`peer ${mode}: no "${key}" within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs)
      const done = (error?: Error) => {
        listeners.delete(check)
        clearTimeout(timer)
        const found = messages.find((m) => key in m)
        if (found) resolve(found)
        else reject(error ?? new Error(`peer ${mode} exited (${exitCode}) without "${key}"; stderr: ${stderr}`))
      }
      const check = () => {
        if (messages.some((m) => key in m)) done()
        else if (exitCode !== undefined) setTimeout(() => done(), 100)
      }
      listeners.add(check)
      check()
    })
  const peer = { child, message, exited }
  peers.push(peer)
  return peer
}

const record = (i: number) => ({ key: i, value: i * 0.5, name: `record-${i}` })
const isDone = (item: LinkItem) => !Link.isBatch(item) && item._tag === "Done"

describe("cluster data link", () => {
  it("frames survive any split of the byte stream, and each frame is judged by the limit in force when it is read", () => {
    const random = rng(3)
    const items: Array<LinkItem> = [
      [record(1)],
      { _tag: "Watermark", time: 5 },
      Array.from({ length: 500 }, (_, i) => record(i)),
      { _tag: "Done" }
    ]
    const bytes = items.flatMap((item) => {
      const { body, type } = encodeItem(item)
      return encodeFrame(type, body)
    })
    const stream = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0))
    bytes.reduce((offset, b) => (stream.set(b, offset), offset + b.length), 0)
    for (let run = 0; run < 50; run++) {
      const decoder = new FrameDecoder(1 << 20)
      const frames: Array<Frame> = []
      for (let at = 0; at < stream.length;) {
        const end = Math.min(stream.length, at + 1 + Math.floor(random() * 64))
        decoder.push(stream.subarray(at, end))
        at = end
        for (let f = decoder.next(); f; f = decoder.next()) frames.push(f)
      }
      expect(frames.map(decodeItem)).toEqual(items)
    }
    // A small handshake-time limit rejects the big frame only if it is read under that limit.
    const strict = new FrameDecoder(64)
    strict.push(stream)
    expect(decodeItem(strict.next()!)).toEqual(items[0])
    expect(decodeItem(strict.next()!)).toEqual(items[1])
    expect(() => strict.next()).toThrow(/at most 64/)
    const raised = new FrameDecoder(64)
    raised.push(stream)
    raised.next()
    raised.maxLength = 1 << 20
    expect(decodeItem(raised.next()!)).toEqual(items[1])
    expect(decodeItem(raised.next()!)).toEqual(items[2])
  })

  it("carries 100k records in batches to another process and back, complete and in order, control items in order", async () => {
    const peer = startPeer("echo-listen", { LINK_SECRET: SECRET, LINK_WINDOW: "65536" })
    const { port } = await peer.message("port")

    // Batches of 1..2000 records (frames of any size against 64 KiB windows), control items between them.
    const random = rng(7)
    const sent: Array<LinkItem> = []
    for (let n = 0, b = 0; n < 100_000; b++) {
      const size = Math.min(100_000 - n, 1 + Math.floor(random() * 2000))
      sent.push(Array.from({ length: size }, (_, i) => record(n + i)))
      n += size
      if (b % 7 === 6) sent.push({ _tag: "Watermark", time: n })
      if (b % 20 === 19) sent.push({ _tag: "Barrier", id: b })
    }
    sent.push({ _tag: "Done" })

    const { received, stats } = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const link = yield* Link.connect({ port, secret: SECRET, window: 65536 })
      const sender = yield* Effect.forkChild(Effect.forEach(sent, link.send, { discard: true }))
      const received: Array<LinkItem> = []
      for (let item = yield* link.receive; ; item = yield* link.receive) {
        received.push(item)
        if (isDone(item)) break
      }
      yield* Fiber.join(sender)
      return { received, stats: { ...link.stats } }
    })))

    const firstDifference = sent.findIndex((item, i) => JSON.stringify(item) !== JSON.stringify(received[i]))
    expect(received.length).toBe(sent.length)
    expect(firstDifference).toBe(-1)
    // The peer checked on its side too: every record once, keys in order, control items in order.
    const report = await peer.message("records")
    expect(report).toEqual({
      records: 100_000,
      ordered: true,
      controls: sent.filter((item) => !Link.isBatch(item)).map((item) => (item as { _tag: string })._tag)
    })
    expect(stats.framesSent).toBe(sent.length)
    expect(stats.maxInFlight).toBeLessThanOrEqual(65536)
  }, 30_000)

  it("suspends the sender while a slow consumer holds its window: bytes in flight stay within the window on both sides", async () => {
    const window = 65536
    const delay = 8
    const batches = 50
    const peer = startPeer("slow-listen", { LINK_SECRET: SECRET, LINK_WINDOW: String(window), LINK_DELAY: String(delay) })
    const { port } = await peer.message("port")
    const batch = Array.from({ length: 1024 }, (_, i) => record(i)) // ~20 KiB on the wire

    const { elapsed, stats } = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const link = yield* Link.connect({ port, secret: SECRET })
      const start = performance.now()
      for (let i = 0; i < batches; i++) yield* link.send(batch)
      const elapsed = performance.now() - start
      yield* link.send({ _tag: "Done" })
      return { elapsed, stats: { ...link.stats } }
    })))

    const report = await peer.message("records")
    expect(report.records).toBe(batches * 1024)
    expect(stats.peerWindow).toBe(window)
    expect(stats.maxInFlight).toBeLessThanOrEqual(window)
    expect(stats.maxInFlight).toBeGreaterThan(window / 2) // the window was used, not just respected
    expect(stats.creditWaits).toBeGreaterThan(0)
    expect(report.maxBuffered).toBeLessThanOrEqual(window)
    // The last send returns once all but a window's worth were taken, one per `delay` ms:
    // at least (batches - window / frame size) × delay, far more than sending alone takes.
    const frame = stats.bytesSent / batches
    expect(elapsed).toBeGreaterThanOrEqual((batches - window / frame - 1) * delay * 0.8)
  }, 30_000)

  it("refuses a peer with the wrong secret or none: it gets LinkAuthError, delivers nothing, and the listener logs a warning", async () => {
    const warnings: Array<string> = []
    const capture = Logger.make((options) => {
      if (options.logLevel === "Warn") warnings.push(JSON.stringify(options.message))
    })
    const outcome = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const listener = yield* Link.listen({ secret: SECRET })
      const accepted = yield* Effect.forkChild(Effect.scoped(Effect.flatMap(listener.accept, (link) => link.receive)))
      const env = { LINK_PORT: String(listener.port) }
      const wrong = startPeer("connect-send", { ...env, LINK_SECRET: "wrong secret" })
      const raw = startPeer("raw-send", env)
      const results = yield* Effect.promise(() => Promise.all([wrong.message("error"), wrong.exited, raw.message("closed")]))
      yield* Effect.sleep(200) // anything that got through would be accepted by now
      return { results, delivered: accepted.pollUnsafe() }
    })).pipe(Effect.provide(Logger.layer([capture]))))

    const [wrong, , raw] = outcome.results
    expect(wrong).toEqual({ error: "LinkAuthError" })
    expect(raw.closed).toBe(true)
    expect(outcome.delivered).toBeUndefined() // no link was ever accepted
    expect(warnings.filter((w) => w.includes("refused a connection")).length).toBe(2)

    // The other way round: a listener in another process refuses our wrong secret.
    const peer = startPeer("echo-listen", { LINK_SECRET: SECRET })
    const { port } = await peer.message("port")
    const refused = await Effect.runPromise(Effect.scoped(Effect.flip(Link.connect({ port, secret: "not it" }))))
    expect(refused._tag).toBe("LinkAuthError")
    const empty = await Effect.runPromise(Effect.scoped(Effect.flip(Link.connect({ port, secret: "" }))))
    expect(empty._tag).toBe("LinkAuthError")
  }, 30_000)

  it("fails a blocked send and a pending receive with LinkClosedError promptly when the peer process is killed", async () => {
    const result = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const listener = yield* Link.listen({ secret: SECRET })
      const peer = startPeer("stall-connect", { LINK_SECRET: SECRET, LINK_PORT: String(listener.port), LINK_WINDOW: "16384" })
      const link = yield* listener.accept
      const first = yield* link.receive
      yield* Effect.promise(() => peer.message("ready"))
      const batch = Array.from({ length: 100 }, (_, i) => record(i))
      const sender = yield* Effect.forkChild(Effect.forever(link.send(batch)))
      const receiver = yield* Effect.forkChild(link.receive)
      // The peer never consumes: wait until its window is full and our send is suspended.
      while (link.stats.creditWaits === 0) yield* Effect.sleep(5)
      yield* Effect.sleep(50)
      const stillBlocked = sender.pollUnsafe() === undefined && receiver.pollUnsafe() === undefined
      const killedAt = performance.now()
      peer.child.kill("SIGKILL")
      // A link that missed the peer's death would hang here: give up (and fail) after 5 s.
      const [sendError, receiveError, failed] = yield* Effect.timeout(
        Effect.all([Effect.flip(Fiber.join(sender)), Effect.flip(Fiber.join(receiver)), Effect.flip(link.failed)]),
        "5 seconds"
      )
      return { first, stillBlocked, sendError, receiveError, failed, latency: performance.now() - killedAt, stats: { ...link.stats } }
    })))
    expect(result.first).toEqual([{ key: 1, value: 1, name: "hello" }])
    expect(result.stillBlocked).toBe(true)
    expect(result.stats.inFlight).toBeLessThanOrEqual(16384)
    expect(result.sendError._tag).toBe("LinkClosedError")
    expect(result.receiveError._tag).toBe("LinkClosedError")
    expect(result.failed._tag).toBe("LinkClosedError")
    expect(result.latency).toBeLessThan(2000)
  }, 30_000)
})
