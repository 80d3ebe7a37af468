/** SQL text helpers shared by the connectors. */

/** A quoted identifier; `schema.table` is quoted part by part. */
export const ident = (name: string): string => name.split(".").map((part) => `"${part.replaceAll("\"", "\"\"")}"`).join(".")

/** PostgreSQL's error code of a failed query (`42P01`: no such table, `42703`: no such column). */
export const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause ? String((cause as { code: unknown }).code) : undefined

/** Why a query failed, naming the table or column at fault when the server says which. */
export const reasonOf = (what: string, cause: unknown): string => {
  switch (codeOf(cause)) {
    case "42P01":
      return `${what}: no such table`
    case "42703":
      return `${what}: no such column`
    case "28000":
    case "28P01":
      return `${what}: user refused`
    default:
      return what
  }
}

/**
 * Whether `cause` (or the error it wraps) is a lost or refused connection, or a server shutting
 * down or starting: what the sinks' `retry` retries. Other failures (a bad row, a missing table)
 * fail at once, and so does a call on a pool this process ended (`CONNECTION_ENDED`, `_DESTROYED`:
 * a job closing), which no retry can mend.
 */
export const isConnectionLost = (cause: unknown): boolean => {
  for (let error = cause, depth = 0; error !== undefined && depth < 4; depth++) {
    const code = codeOf(error)
    if (code !== undefined && CONNECTION_LOST.has(code)) return true
    error = typeof error === "object" && error !== null && "cause" in error ? (error as { cause: unknown }).cause : undefined
  }
  return false
}

const CONNECTION_LOST = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "CONNECTION_CLOSED",
  "CONNECT_TIMEOUT",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03" // cannot_connect_now (starting up)
])
