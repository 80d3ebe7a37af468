import { Data } from "effect"

const causeMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** The peer did not prove the cluster secret, or refused ours: nothing was exchanged. */
export class LinkAuthError extends Data.TaggedError("LinkAuthError")<{
  readonly reason: string
  /** The connection's failure that cut the handshake short, if that is what happened (not a refusal: another try may do). */
  readonly cause?: unknown
}> {
  override get message() {
    return `link authentication failed: ${this.reason}`
  }
}

/** The connection to the peer could not be opened (nobody listening, timeout...). */
export class LinkConnectError extends Data.TaggedError("LinkConnectError")<{
  readonly host: string
  readonly port: number
  readonly cause: unknown
}> {
  override get message() {
    return `cannot connect to ${this.host}:${this.port}: ${causeMessage(this.cause)}`
  }
}

/** The connection closed or failed (peer gone, socket error): the link carries nothing more. */
export class LinkClosedError extends Data.TaggedError("LinkClosedError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `link closed: ${this.reason}${this.cause === undefined ? "" : ` (${causeMessage(this.cause)})`}`
  }
}

/** The peer broke the wire protocol (bad frame, more bytes than its credit): the link is closed. */
export class LinkProtocolError extends Data.TaggedError("LinkProtocolError")<{
  readonly reason: string
}> {
  override get message() {
    return `link protocol error: ${this.reason}`
  }
}

/** How an established link fails. */
export type LinkError = LinkClosedError | LinkProtocolError
