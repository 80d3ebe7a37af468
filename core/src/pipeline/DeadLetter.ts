import type { SchemaIssue } from "effect"

/**
 * A record a stage rejected instead of failing the job: it did not decode
 * (`Stage.decode`) or the stage's function threw on it (`Stage.map` with
 * `deadLetters`). Plain data apart from the parse issue, so any sink can take it.
 */
export interface DeadLetter {
  readonly stage: string
  /** The record as the stage received it (the raw payload, for a decode). */
  readonly record: unknown
  /** The thrown error's or the parse error's message, and the parse issue of a decode. */
  readonly error: { readonly message: string; readonly issue?: SchemaIssue.Issue | undefined }
  /** For a stage reading a source of splits directly: the record's split. */
  readonly split?: string | undefined
  /** For a stage reading a source directly: the source's (split's) position before the record's batch. */
  readonly position?: unknown
  /**
   * The record's index in that batch: for a source counting records, as
   * `Sources.files` counts lines, the record is at `position + index`.
   */
  readonly index?: number | undefined
}
