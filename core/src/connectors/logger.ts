import { Console, Effect } from "effect"
import * as Sink from "../pipeline/Sink.ts"

/** Writes each record as a line to the console (through Effect's `Console`). */
export const logger = <A>(options?: {
  readonly format?: (a: A) => string
  readonly name?: string
}): Sink.Sink<A> => {
  const format = options?.format ?? ((a: A) => (typeof a === "string" ? a : JSON.stringify(a)))
  return Sink.make({
    name: options?.name ?? "logger",
    open: () =>
      Effect.succeed({
        write: (batch) => Console.log(batch.map(format).join("\n"))
      })
  })
}
