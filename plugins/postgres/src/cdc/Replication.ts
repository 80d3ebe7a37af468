/**
 * The wire of a logical replication connection (the streaming replication
 * protocol inside CopyBoth): XLogData and keepalive messages from the server,
 * standby status updates to it. The status update is what moves the slot's
 * confirmed flush LSN, so it only ever reports what the job made durable.
 */
import type { Duplex } from "node:stream"
import { PG_EPOCH_US } from "./Pgoutput.ts"

/** What the server sent: WAL data (the pgoutput message), or a keepalive. */
export type ServerMessage =
  | { readonly _tag: "XLogData"; readonly body: Buffer }
  | { readonly _tag: "Keepalive"; readonly walEnd: bigint; readonly replyRequested: boolean }
  | undefined

/** Reads a CopyData message of the replication stream. */
export const parse = (data: Buffer): ServerMessage => {
  // 'w': start LSN, end LSN, server clock (8 bytes each), then the message.
  if (data[0] === 0x77) return { _tag: "XLogData", body: data.subarray(25) }
  // 'k': the WAL decoded and sent so far, server clock, whether a reply is due now.
  if (data[0] === 0x6b) return { _tag: "Keepalive", walEnd: data.readBigUInt64BE(1), replyRequested: data[17] === 1 }
  return undefined
}

/**
 * Standby status update 'r': written, flushed and applied all at `durable`.
 * With `replyRequested` the server answers at once with a keepalive.
 */
export const sendStatus = (stream: Duplex, durable: bigint, replyRequested = false): void => {
  const message = Buffer.alloc(34)
  message[0] = 0x72
  message.writeBigUInt64BE(durable, 1)
  message.writeBigUInt64BE(durable, 9)
  message.writeBigUInt64BE(durable, 17)
  message.writeBigInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_US, 25)
  message[33] = replyRequested ? 1 : 0
  stream.write(message)
}
