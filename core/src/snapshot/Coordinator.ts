/**
 * The job coordinator's side of the snapshot protocol (Chandy–Lamport with
 * barriers). Every interval it asks the sources for snapshot n; each source
 * saves its position and state and sends barrier n downstream; every other
 * tasklet saves its state once barrier n has come in on all its inputs
 * (holding back the inputs that delivered it first, for exactly-once). The
 * snapshot is complete when every tasklet has acknowledged it: only then is
 * it stored and read back intact, its sinks' transactions committed, and
 * snapshots older than the retained ones deleted (a damaged newest one leaves
 * an older one to fall back to).
 */
import { Effect } from "effect"
import { type Snapshot, SnapshotError, type StepState } from "./Snapshot.ts"
import { DEFAULT_RETAINED, load, prune, type SnapshotStore } from "./SnapshotStore.ts"
import { remember, type SnapshotInfo } from "../runtime/Metrics.ts"

export type Guarantee = "none" | "at-least-once" | "exactly-once"

/** The id of the transaction a two-phase-commit sink prepares when its input ends. */
export const FINAL_SNAPSHOT = Number.MAX_SAFE_INTEGER

type Position = readonly [vertex: string, instance: number, position: unknown]

/** A tasklet's part of a snapshot: its steps' state and, for a source, its position. */
export interface Contribution {
  readonly steps: ReadonlyArray<StepState>
  readonly position: Position | undefined
  /** Keyed state entries in `steps`. */
  readonly keys?: number | undefined
  /** How long the tasklet's inputs took to align on the barrier (ms). */
  readonly alignmentMs?: number | undefined
}

/**
 * What an execution's tasklets see of the snapshot protocol: the job's own
 * coordinator, or (on a member of a cluster) a stand-in for the coordinator
 * that runs elsewhere.
 */
export interface Snapshots {
  readonly guarantee: Exclude<Guarantee, "none">
  /** The newest snapshot asked for; sources start it when they see it. */
  readonly requested: number
  /** The newest complete snapshot. */
  readonly completed: number
  /** A snapshot after which sources stop emitting (0: none), so a job can stop with nothing to replay. */
  readonly terminal: number
  /** A two-phase-commit sink instance (in `tasklet`), committed when a snapshot completes. */
  readonly register: (tasklet: string, commit: (id: number) => Effect.Effect<void, unknown>) => void
  /** A tasklet's part of snapshot `id`. */
  readonly ack: (id: number, tasklet: string, contribution: Contribution) => Effect.Effect<void, unknown, any>
  /** A tasklet ended: it takes part in later snapshots with its final state. */
  readonly done: (tasklet: string, contribution: Contribution) => Effect.Effect<void, unknown, any>
  /** Runs beside the tasklets, asking for a snapshot every `interval` ms (where the coordinator runs). */
  readonly drive: (interval: number) => Effect.Effect<never>
  /** Every tasklet here ended: commits the sinks' final transactions once the whole job has. */
  readonly finish: () => Effect.Effect<void, unknown>
}

export class Coordinator implements Snapshots {
  requested: number
  completed: number
  terminal = 0
  readonly guarantee: Exclude<Guarantee, "none">
  private readonly pending = new Map<number, Map<string, Contribution>>()
  private readonly finished = new Map<string, Contribution>()
  private readonly committers: Array<{ readonly tasklet: string; readonly commit: (id: number) => Effect.Effect<void, unknown> }> = []
  private readonly job: string
  private readonly store: SnapshotStore
  private readonly tasklets: number
  private readonly retain: number
  private readonly history: Array<SnapshotInfo>

  constructor(
    job: string,
    store: SnapshotStore,
    tasklets: number,
    guarantee: Exclude<Guarantee, "none">,
    startAfter: number,
    retain = DEFAULT_RETAINED,
    /** Where each snapshot's id, timing, size and outcome are recorded (the job's metrics). */
    history: Array<SnapshotInfo> = []
  ) {
    this.history = history
    this.job = job
    this.store = store
    this.tasklets = tasklets
    this.guarantee = guarantee
    this.requested = startAfter
    this.completed = startAfter
    this.retain = retain
  }

  register(tasklet: string, commit: (id: number) => Effect.Effect<void, unknown>): void {
    this.committers.push({ tasklet, commit })
  }

  finish(): Effect.Effect<void, unknown> {
    return Effect.suspend(() => {
      // Every tasklet must have reported its end under its own key: fewer means two shared a key,
      // and then no snapshot could have completed either. Committing now would lose what replays.
      if (this.finished.size !== this.tasklets) {
        return Effect.fail(new SnapshotError({
          job: this.job,
          reason: `${this.finished.size} of ${this.tasklets} tasklets reported their end; no final transaction is committed`
        }))
      }
      return Effect.forEach(this.committers, ({ commit }) => commit(FINAL_SNAPSHOT), { discard: true })
    })
  }

  drive(interval: number): Effect.Effect<never> {
    return Effect.forever(Effect.andThen(Effect.sleep(interval), Effect.sync(() => this.request())))
  }

  /**
   * Starts the next snapshot unless one is still in flight or a terminal one
   * was asked for (then returns false); sources stop after a `terminal` one.
   */
  request(terminal = false): boolean {
    if (this.requested !== this.completed || this.terminal !== 0) return false
    this.requested++
    if (terminal) this.terminal = this.requested
    remember(this.history, { id: this.requested, start: Date.now(), duration: undefined, alignment: undefined, bytes: 0, keys: 0, status: "in-progress" })
    return true
  }

  ack(id: number, tasklet: string, contribution: Contribution): Effect.Effect<void, unknown, any> {
    return Effect.suspend(() => {
      let acks = this.pending.get(id)
      if (!acks) this.pending.set(id, (acks = new Map()))
      acks.set(tasklet, contribution)
      return this.tryComplete(id)
    })
  }

  done(tasklet: string, contribution: Contribution): Effect.Effect<void, unknown, any> {
    return Effect.suspend(() => {
      this.finished.set(tasklet, contribution)
      return this.requested > this.completed ? this.tryComplete(this.requested) : Effect.void
    })
  }

  private tryComplete(id: number): Effect.Effect<void, unknown, any> {
    const acks = this.pending.get(id) ?? new Map<string, Contribution>()
    const all = new Map([...this.finished, ...acks])
    if (all.size < this.tasklets || id !== this.completed + 1) return Effect.void
    // Ended for this snapshot: tasklets that finished without acknowledging it. One that
    // acknowledged it and finished after is restored from its acknowledgement (and replays
    // what followed), so its final transaction must not be committed with this snapshot.
    const ended = new Set([...this.finished.keys()].filter((tasklet) => !acks.has(tasklet)))
    const snapshot: Snapshot = {
      job: this.job,
      id,
      steps: [...all.values()].flatMap((c) => c.steps),
      ended: [...ended],
      positions: [...all.values()].flatMap((c) => (c.position ? [c.position] : []))
    }
    this.pending.delete(id)
    const { store, committers, job, retain } = this
    const markCompleted = () => {
      this.completed = id
    }
    const record = (status: SnapshotInfo["status"]) =>
      Effect.sync(() => {
        const at = this.history.findLastIndex((s) => s.id === id)
        if (at < 0) return
        const { start } = this.history[at]!
        let bytes = 0
        for (const step of snapshot.steps) for (const chunk of step.chunks) bytes += chunk.byteLength
        let keys = 0
        let alignment = 0
        for (const c of all.values()) {
          keys += c.keys ?? 0
          alignment = Math.max(alignment, c.alignmentMs ?? 0)
        }
        // In whole milliseconds, as the duration: never more than it.
        this.history[at] = { id, start, duration: Date.now() - start, alignment: Math.floor(alignment), bytes, keys, status }
      })
    return Effect.gen(function*() {
      yield* store.save(snapshot)
      // Only a snapshot that reads back intact may commit output: a restore will need it.
      yield* load(store, job, id)
      markCompleted()
      for (const { tasklet, commit } of committers) {
        yield* commit(id)
        // A sink that ended before this snapshot prepared its final transaction; the snapshot
        // records it as ended (nothing to replay), so that transaction is committed with it.
        if (ended.has(tasklet)) yield* commit(FINAL_SNAPSHOT)
      }
      yield* prune(store, job, retain)
    }).pipe(Effect.onExit((exit) => record(exit._tag === "Success" ? "completed" : "failed")))
  }
}
