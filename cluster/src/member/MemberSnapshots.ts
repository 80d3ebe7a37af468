/**
 * A member's stand-in for the job coordinator, which runs in the parent: it
 * passes the tasklets' snapshot acknowledgements on, follows the
 * coordinator's snapshot requests and runs the commits it orders on the
 * two-phase-commit sinks that live here.
 */
import type { Contribution, Guarantee, Snapshots } from "@tributary/core"
import { Deferred, Effect } from "effect"
import type { FromMember } from "../coordinator/Protocol.ts"

export class MemberSnapshots implements Snapshots {
  requested: number
  readonly completed: number
  terminal = 0
  private readonly committers = new Map<string, (id: number) => Effect.Effect<void, unknown>>()
  private readonly released = Deferred.makeUnsafe<void>()
  readonly guarantee: Exclude<Guarantee, "none">
  private readonly execution: number
  private readonly tell: (message: FromMember) => void

  constructor(execution: number, guarantee: Exclude<Guarantee, "none">, startAfter: number, tell: (message: FromMember) => void) {
    this.execution = execution
    this.guarantee = guarantee
    this.tell = tell
    this.requested = startAfter
    this.completed = startAfter
  }

  register(tasklet: string, commit: (id: number) => Effect.Effect<void, unknown>): void {
    this.committers.set(tasklet, commit)
    this.tell({ _tag: "Register", execution: this.execution, tasklet })
  }

  ack(id: number, tasklet: string, contribution: Contribution) {
    return Effect.sync(() => this.tell({ _tag: "Ack", execution: this.execution, id, tasklet, contribution }))
  }

  done(tasklet: string, contribution: Contribution) {
    return Effect.sync(() => this.tell({ _tag: "Done", execution: this.execution, tasklet, contribution }))
  }

  /** The coordinator asks for snapshots. */
  drive(): Effect.Effect<never> {
    return Effect.never
  }

  /** Waits until the coordinator has seen every member end and committed the final transactions. */
  finish() {
    return Effect.andThen(Effect.sync(() => this.tell({ _tag: "Ended", execution: this.execution })), Deferred.await(this.released))
  }

  /** The coordinator asked for snapshot `id`. */
  request(id: number, terminal: boolean): void {
    this.requested = id
    if (terminal) this.terminal = id
  }

  /** The coordinator orders the sink in `tasklet` to commit up to `id`. */
  commit(tasklet: string, id: number): Effect.Effect<void, unknown> {
    return this.committers.get(tasklet)?.(id) ?? Effect.void
  }

  /** The whole job ended: `finish` returns. */
  release(): void {
    Deferred.doneUnsafe(this.released, Effect.void)
  }
}
