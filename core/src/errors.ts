import { Cause, Context, Data } from "effect"

/** A short, bounded rendering of a record for error messages. */
export const preview = (value: unknown): string => {
  let text: string
  try {
    text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}

/** A cause's message; for one without (a tagged error), its tag and fields. */
const causeMessage = (cause: unknown): string => {
  if (cause instanceof Error && cause.message !== "") return cause.message
  if (typeof cause !== "object" || cause === null) return String(cause)
  const { _tag, ...fields } = cause as { readonly _tag?: unknown }
  const name = _tag ?? (cause instanceof Error ? cause.name : undefined)
  if (name === undefined) return preview(cause)
  return Object.keys(fields).length === 0 ? String(name) : `${String(name)} ${preview(fields)}`
}

/**
 * Marks an error that no restart can mend (a setting the system refuses, an
 * execution fenced off by a newer one): a job with a processing guarantee
 * fails with it at once instead of restarting under its policy. An error
 * opts in with a `[Unrecoverable] = true` field.
 */
export const Unrecoverable: unique symbol = Symbol.for("@tributary/core/Unrecoverable")

/** Whether `error`, or an error it wraps (`cause`), is marked `Unrecoverable`. */
export const isUnrecoverable = (error: unknown): boolean => {
  for (let e = error, depth = 0; typeof e === "object" && e !== null && depth < 5; depth++) {
    if ((e as { [Unrecoverable]?: unknown })[Unrecoverable] === true) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

/**
 * Where a stage's own typed error (of `mapEffect`, of `mapUsingService`'s
 * resource) arose. The job fails with the error itself, so it can be caught by
 * its tag; this annotation of the failure's `Cause` keeps the stage and record.
 */
export class FailedStage extends Context.Service<FailedStage, {
  readonly stage: string
  readonly record: unknown
}>()("tributary/FailedStage") {}

/** The stage and record that a job's failure with a stage's own error arose at. */
export const failedStage = <E>(cause: Cause.Cause<E>): FailedStage["Service"] | undefined =>
  Context.getOrUndefined(Cause.annotations(cause), FailedStage)

/**
 * A user function threw (or a user effect died), or a record failed to decode
 * (`Stage.decode`, the cause a `SchemaError`): names the stage and carries the
 * record, and where it came from when the stage reads a source directly.
 */
export class StageError extends Data.TaggedError("StageError")<{
  readonly stage: string
  readonly record: unknown
  readonly cause: unknown
  /** The split of the source the record came from (a source of splits). */
  readonly split?: string | undefined
  /** The source's (split's) position before the record's batch. */
  readonly position?: unknown
  /** The record's index in that batch. */
  readonly index?: number | undefined
}> {
  override get message() {
    const split = this.split === undefined ? "" : `split ${JSON.stringify(this.split)}, `
    const at = this.index === undefined ? "" : ` (${split}position ${preview(this.position)}, index ${this.index})`
    return `stage "${this.stage}" failed on record ${preview(this.record)}${at}: ${causeMessage(this.cause)}`
  }
}

/** A source could not be opened or read. */
export class SourceError extends Data.TaggedError("SourceError")<{
  readonly source: string
  readonly cause: unknown
}> {
  override get message() {
    return `source "${this.source}" failed: ${causeMessage(this.cause)}`
  }
}

/** A sink could not be opened, written or completed. */
export class SinkError extends Data.TaggedError("SinkError")<{
  readonly sink: string
  readonly cause: unknown
}> {
  override get message() {
    return `sink "${this.sink}" failed: ${causeMessage(this.cause)}`
  }
}

/** The pipeline cannot be turned into a job (no sink, bad option, ...). */
export class PlanError extends Data.TaggedError("PlanError")<{
  readonly reason: string
}> {
  override get message() {
    return `invalid pipeline: ${this.reason}`
  }
}

/** `join` on a job that was cancelled. */
export class JobCancelledError extends Data.TaggedError("JobCancelledError")<{
  readonly job: string
}> {
  override get message() {
    return `job "${this.job}" was cancelled`
  }
}

/** Everything a job can fail with, beside its stages' own errors. */
/** A connector gave up on its server. */
export class ConnectorError extends Data.TaggedError("ConnectorError")<{
  readonly connector: string
  /** The server it talks to, as the user named it (`host:port`, a URL without its password). */
  readonly server: string
  readonly attempts: number
  readonly cause: unknown
}> {
  override get message() {
    const last = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `connector "${this.connector}" gave up on ${this.server} after ${this.attempts} attempts: ${last}`
  }
}

export type JobError = StageError | SourceError | SinkError | ConnectorError | PlanError | JobCancelledError
