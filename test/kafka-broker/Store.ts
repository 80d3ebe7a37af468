/**
 * The broker's data: topics and their partitions, committed group offsets, and the journal that makes both
 * durable. Every mutation goes through here so a restart can replay it.
 */
import { Journal, type Event } from "./Journal.ts"
import { Partition } from "./Partition.ts"
import { type Batch, header } from "./RecordBatch.ts"

/** A committed consumer offset. */
export interface Committed {
  readonly offset: number
  readonly metadata: string | null
}

/** Topics, partitions and committed offsets, with a journal. */
export class Store {
  readonly topics = new Map<string, Array<Partition>>()
  /** group -> "topic\u0000partition" -> committed offset */
  readonly offsets = new Map<string, Map<string, Committed>>()
  private readonly waiters = new Set<() => void>()
  readonly journal: Journal

  constructor(dataDir: string | undefined) {
    this.journal = new Journal(dataDir)
  }

  /** Applies `event` to memory and journals it (not while replaying). */
  apply(event: Event, replaying = false): void {
    switch (event.k) {
      case "topic": {
        const parts = this.topics.get(event.name) ?? []
        while (parts.length < event.partitions) parts.push(new Partition())
        this.topics.set(event.name, parts)
        break
      }
      case "deleteTopic":
        this.topics.delete(event.name)
        break
      case "batch":
        // Live batches are already in the log (see `append`); only a replay re-appends them.
        if (replaying) this.topics.get(event.topic)?.[event.partition]?.append(header(Buffer.from(event.bytes, "base64")))
        break
      case "offset": {
        const group = this.offsets.get(event.group) ?? new Map<string, Committed>()
        group.set(`${event.topic}\u0000${event.partition}`, { offset: event.offset, metadata: event.metadata })
        this.offsets.set(event.group, group)
        break
      }
      default:
        break
    }
    if (!replaying) this.journal.append(event)
  }

  partition(topic: string, partition: number): Partition | undefined {
    return this.topics.get(topic)?.[partition]
  }

  /** Appends a batch to a partition, journals it and wakes waiting fetches. */
  append(topic: string, partition: number, input: Batch): Batch {
    const batch = this.partition(topic, partition)!.append(input)
    this.apply({ k: "batch", topic, partition, bytes: batch.bytes.toString("base64") })
    this.notify()
    return batch
  }

  committed(group: string, topic: string, partition: number): Committed | undefined {
    return this.offsets.get(group)?.get(`${topic}\u0000${partition}`)
  }

  /** Resolves when data arrives or after `ms` (a fetch's long poll). */
  waitForData(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.waiters.add(done)
    })
  }

  notify(): void {
    for (const w of [...this.waiters]) w()
  }
}
