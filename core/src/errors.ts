import { Data } from "effect"

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

const causeMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** A user function threw: names the stage and carries the record it threw on. */
export class StageError extends Data.TaggedError("StageError")<{
  readonly stage: string
  readonly record: unknown
  readonly cause: unknown
}> {
  override get message() {
    return `stage "${this.stage}" failed on record ${preview(this.record)}: ${causeMessage(this.cause)}`
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

/** Everything a job can fail with. */
export type JobError = StageError | SourceError | SinkError | PlanError | JobCancelledError
