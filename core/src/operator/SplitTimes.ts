/**
 * The event times of the splits one instance reads, for per-split
 * watermarks: the lowest time over the splits that are neither ended nor idle,
 * kept in an indexed min-heap, so a batch costs O(log splits) however many
 * splits there are (a time only ever rises, and a rise sifts down). Idle splits
 * are found by a scan at most every quarter of the idle timeout and leave the
 * heap until their data comes.
 */
export interface SplitTime {
  readonly id: string
  top: number
  seen: number
  /** Its index in the heap; -1 while it is idle. */
  at: number
}

export class SplitTimes {
  private readonly heap: Array<SplitTime> = []
  private readonly byId = new Map<string, SplitTime>()
  private readonly idleTimeout: number
  private scanned = 0

  constructor(idleTimeout: number) {
    this.idleTimeout = idleTimeout
  }

  /** The instance took split `id` on: it holds the watermark back from now on. */
  add(id: string, now: number): SplitTime {
    let split = this.byId.get(id)
    if (!split) {
      this.byId.set(id, (split = { id, top: -Infinity, seen: now, at: -1 }))
      this.push(split)
    }
    return split
  }

  /** Split `id` has data now (an idle one rejoins). */
  enter(id: string, now: number): SplitTime {
    const split = this.add(id, now)
    split.seen = now
    if (split.at < 0) this.push(split)
    return split
  }

  remove(id: string): void {
    const split = this.byId.get(id)
    if (!split) return
    this.byId.delete(id)
    if (split.at >= 0) this.removeAt(split.at)
  }

  raise(split: SplitTime, top: number): void {
    if (top <= split.top) return
    split.top = top
    if (split.at >= 0) this.down(split.at)
  }

  /** The lowest time over the splits that are not idle; `undefined` when all are. */
  min(now: number): number | undefined {
    if (this.idleTimeout !== Infinity && now - this.scanned >= this.idleTimeout / 4) {
      this.scanned = now
      for (const split of [...this.heap]) if (now - split.seen >= this.idleTimeout) this.removeAt(split.at)
    }
    return this.heap[0]?.top
  }

  private push(split: SplitTime): void {
    split.at = this.heap.length
    this.heap.push(split)
    this.up(split.at)
  }

  private removeAt(i: number): void {
    const { heap } = this
    const gone = heap[i]!
    const last = heap.pop()!
    gone.at = -1
    if (last === gone) return
    heap[i] = last
    last.at = i
    this.down(i)
    this.up(last.at)
  }

  private up(i: number): void {
    const { heap } = this
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.top <= heap[i]!.top) return
      this.swap(i, parent)
      i = parent
    }
  }

  private down(i: number): void {
    const { heap } = this
    while (true) {
      const l = 2 * i + 1
      const r = l + 1
      let least = i
      if (l < heap.length && heap[l]!.top < heap[least]!.top) least = l
      if (r < heap.length && heap[r]!.top < heap[least]!.top) least = r
      if (least === i) return
      this.swap(i, least)
      i = least
    }
  }

  private swap(a: number, b: number): void {
    const { heap } = this
    const x = heap[a]!
    heap[a] = heap[b]!
    heap[b] = x
    heap[a]!.at = a
    heap[b]!.at = b
  }
}
