/**
 * A member process of a local cluster (started by `LocalCluster`):
 * `member.ts <index>`, the cluster secret in TRIBUTARY_SECRET. It imports the
 * pipeline modules the coordinator (its parent) names.
 */
import { Platform } from "@tributary/core"
import { Effect } from "effect"
import { serveParent } from "./Child.ts"

// For a pipeline module that wants to know where it runs.
process.env.TRIBUTARY_MEMBER = process.argv[2]

await Effect.runPromise(serveParent().pipe(Effect.provide(Platform.layer)))
