/** What every API handler sees: the broker's state and its address. */
import type { Reader, Writer } from "./Codec.ts"
import type { Group } from "./Groups.ts"
import type { Store } from "./Store.ts"
import type { Transactions } from "./Transactions.ts"

/** Broker-wide state shared by the API handlers. */
export interface Context {
  readonly store: Store
  readonly txns: Transactions
  readonly groups: Map<string, Group>
  readonly host: string
  port: number
  readonly autoCreateTopics: boolean
  readonly defaultPartitions: number
  readonly apis: ReadonlyArray<Api>
}

/** A request as handed to an API: its version and a reader positioned at the body. */
export interface Request {
  readonly version: number
  readonly body: Reader
  readonly clientId: string
  readonly clientHost: string
}

/** One API key: the versions served and the handler (returning the response body, or null for no response). */
export interface Api {
  readonly key: number
  readonly name: string
  readonly min: number
  readonly max: number
  readonly handle: (ctx: Context, req: Request) => Writer | null | Promise<Writer | null>
}

/** Writes `throttle_time_ms` (0) when the version has it. */
export const throttle = (w: Writer, version: number, since: number): Writer =>
  version >= since ? w.int32(0) : w
