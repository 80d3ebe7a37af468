/**
 * The broker's durable log: one JSON line per state change, appended with a synchronous write so a SIGKILL
 * right after a response loses nothing (the kernel holds the bytes). A restart replays it to rebuild the state.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

/** A state change, as journaled. */
export type Event =
  | { readonly k: "topic"; readonly name: string; readonly partitions: number }
  | { readonly k: "deleteTopic"; readonly name: string }
  | { readonly k: "batch"; readonly topic: string; readonly partition: number; readonly bytes: string }
  | {
      readonly k: "offset"
      readonly group: string
      readonly topic: string
      readonly partition: number
      readonly offset: number
      readonly metadata: string | null
    }
  | { readonly k: "producer"; readonly producerId: number; readonly epoch: number }
  | {
      readonly k: "txn"
      readonly id: string
      readonly producerId: number
      readonly epoch: number
      readonly timeoutMs: number
      readonly open: boolean
      readonly partitions: ReadonlyArray<readonly [string, number]>
      readonly offsets: ReadonlyArray<readonly [string, string, number, number, string | null]>
    }

/** Appends events to `dataDir/journal.jsonl`, or nowhere without a data dir. */
export class Journal {
  private readonly fd: number | undefined
  constructor(dataDir: string | undefined) {
    if (dataDir === undefined) return
    Fs.mkdirSync(dataDir, { recursive: true })
    this.fd = Fs.openSync(Path.join(dataDir, "journal.jsonl"), "a+")
  }

  /** The journaled events, oldest first. A torn last line (a kill mid-write) is cut off so appends stay parseable. */
  replay(): Array<Event> {
    if (this.fd === undefined) return []
    const text = Fs.readFileSync(this.fd, "utf8")
    const complete = text.slice(0, text.lastIndexOf("\n") + 1)
    if (complete.length < text.length) Fs.ftruncateSync(this.fd, Buffer.byteLength(complete))
    return complete
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as Event)
  }

  append(event: Event): void {
    if (this.fd !== undefined) Fs.writeSync(this.fd, JSON.stringify(event) + "\n")
  }

  close(): void {
    if (this.fd !== undefined) Fs.closeSync(this.fd)
  }
}
