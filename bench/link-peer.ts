/**
 * The receiving member of bench/link.ts, in its own process: accepts links one
 * after another, takes (decodes) every batch, and answers a Done with `[records]`.
 */
import { Effect } from "effect"
import { Link } from "../cluster/src/index.ts"

const program = Effect.scoped(Effect.gen(function*() {
  const listener = yield* Link.listen({ secret: process.env.LINK_SECRET!, window: Number(process.env.LINK_WINDOW) })
  console.log(JSON.stringify({ port: listener.port }))
  while (true) {
    yield* Effect.scoped(Effect.gen(function*() {
      const link = yield* listener.accept
      let records = 0
      while (true) {
        const item = yield* link.receive
        if (Link.isBatch(item)) records += item.length
        else if (item._tag === "Done") {
          yield* link.send([records])
          records = 0
        }
      }
    }).pipe(Effect.ignore))
  }
}))

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
