import { guarded } from "./failure.ts"
import type { Operator, RestoredState, StateWriter } from "./Operator.ts"

/** Holds the whole input and emits it sorted when the input is done. */
export class Sort implements Operator<unknown, unknown> {
  private readonly held: Array<unknown> = []

  private readonly stage: string
  private readonly compare: (a: any, b: any) => number

  constructor(stage: string, compare: (a: any, b: any) => number) {
    this.stage = stage
    this.compare = compare
  }

  process(_ordinal: number, batch: ReadonlyArray<unknown>): void {
    for (let i = 0; i < batch.length; i++) this.held.push(batch[i])
  }

  complete(out: Array<unknown>): void {
    guarded(this.stage, undefined, () => this.held.sort(this.compare))
    for (let i = 0; i < this.held.length; i++) out.push(this.held[i])
    this.held.length = 0
  }

  saveState(state: StateWriter): void {
    state.local(this.held)
  }

  restoreState({ local }: RestoredState): void {
    for (const held of local as Array<Array<unknown>>) for (const r of held) this.held.push(r)
  }
}
