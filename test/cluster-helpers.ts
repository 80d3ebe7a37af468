/** What the cluster tests share: how to start a process of this runtime, and the checks of the `streaming` fixture's output. */
import * as fs from "node:fs"
import * as path from "node:path"
import { expect } from "vitest"
import { STREAM } from "./fixtures/cluster-jobs.ts"

/** Arguments for this runtime to run a TypeScript module of the workspace. */
export const runtimeArgs = "Deno" in globalThis ? ["run", "-A", "--conditions=source"] : ["--conditions=source"]

/** Every line of the committed parts in `dir`. */
export const committedLines = (dir: string) =>
  fs.readdirSync(dir).filter((f) => f.startsWith("part-")).flatMap((p) =>
    fs.readFileSync(path.join(dir, p), "utf8").split("\n").filter((l) => l.length > 0))

/** What the `streaming` fixture must write: `key start sum count` per window, by plain loops. */
export const expectedWindows = () => {
  const windows = new Map<string, [number, number]>()
  for (let seq = 0; seq < STREAM.count; seq++) {
    const id = `${seq % 7} ${Math.floor(seq / STREAM.window) * STREAM.window}`
    const w = windows.get(id) ?? [0, 0]
    windows.set(id, [w[0] + seq, w[1] + 1])
  }
  return [...windows].map(([id, [sum, count]]) => `${id} ${sum} ${count}`).sort()
}

export const expectEachRecordOnce = (lines: ReadonlyArray<string>) => {
  const records = lines.map(Number).sort((a, b) => a - b)
  expect(records.length).toBe(STREAM.count)
  expect(records.every((seq, i) => seq === i)).toBe(true)
}

/** The `streaming` fixture's output: every record exactly once, every window exact and once. */
export const expectExactOutput = (out: string) => {
  expectEachRecordOnce(committedLines(path.join(out, "records")))
  expect(committedLines(path.join(out, "windows")).sort()).toEqual(expectedWindows())
}


/**
 * The addresses (`host:port`) process `pid` listens on over TCP, from Linux's
 * /proc: its socket inodes, looked up among the listening sockets (state 0A).
 */
export const listeningAddresses = (pid: number): Array<string> => {
  const inodes = new Set(
    fs.readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return [fs.readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/)?.[1]].filter((i) => i !== undefined)
      } catch {
        return [] // closed since the listing
      }
    })
  )
  const hostOf = (hex: string) =>
    hex.length === 8
      ? hex.match(/../g)!.reverse().map((b) => parseInt(b, 16)).join(".") // IPv4, little-endian
      : /^0+$/.test(hex) ? "::" : `[${hex}]` // IPv6: any interface, or some address
  return ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((table) =>
    fs.readFileSync(table, "utf8").split("\n").slice(1).map((line) => line.trim().split(/\s+/)).filter((f) => f[3] === "0A" && inodes.has(f[9]!))
      .map((f) => {
        const [host, port] = f[1]!.split(":")
        return `${hostOf(host!)}:${parseInt(port!, 16)}`
      })
  )
}
