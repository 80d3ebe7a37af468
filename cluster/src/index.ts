/**
 * Tributary's cluster runtime on one machine: `Workers.run` and `LocalCluster`,
 * and the data link that carries record batches between members
 * (length-prefixed msgpack frames, a byte-counted receive window, a mutual
 * HMAC handshake over the cluster secret). Members across machines:
 * `@tributary/cluster/postgres`.
 *
 * @module @tributary/cluster
 */
export * as Link from "./link/Link.ts"
export type { LinkControl, LinkItem, LinkStats, Listener } from "./link/Link.ts"
export * from "./link/Errors.ts"
export * as LocalCluster from "./local/LocalCluster.ts"
export * as Workers from "./workers/Workers.ts"
