/**
 * The messages between a job's coordinator and its members. Every message
 * about a deployment names its execution, so one that arrives after the job
 * was redeployed is recognised and ignored.
 */
import type { Contribution, Guarantee, InstanceMetrics, ManagementJobs, Snapshot } from "@tributary/core"

/** Coordinator → member. */
export type ToMember =
  | {
    readonly _tag: "Deploy"
    readonly execution: number
    /** The job's name, for the transaction ids of its sinks. */
    readonly job: string
    /** The module exporting the pipeline (functions do not travel; the module does), and its export. */
    readonly module: string
    readonly export: string
    /** This member's place among the members of the execution, and where their links listen, in that order. */
    readonly member: number
    readonly peers: ReadonlyArray<readonly [host: string, port: number]>
    readonly parallelism: number
    readonly sourceParallelism: number
    readonly guarantee: Exclude<Guarantee, "none"> | undefined
    readonly restored: Snapshot | undefined
  }
  | { readonly _tag: "Snapshot"; readonly execution: number; readonly id: number; readonly terminal: boolean }
  | { readonly _tag: "Commit"; readonly execution: number; readonly tasklet: string; readonly id: number }
  /** Every member's tasklets ended and the final transactions are committed: the execution may end. */
  | { readonly _tag: "Finish"; readonly execution: number }
  | { readonly _tag: "Cancel"; readonly execution: number }
  /** Stop with drain: the member's sources stop as if their input ended, so every window closes and the sinks commit. */
  | { readonly _tag: "Drain"; readonly execution: number }
  | { readonly _tag: "Exit" }

/** Member → coordinator. */
export type FromMember =
  /** The member is ready: its links listen on `host`:`port`. */
  | { readonly _tag: "Listening"; readonly host: string; readonly port: number }
  /** The member started the execution: it runs this many tasklets. */
  | { readonly _tag: "Deployed"; readonly execution: number; readonly tasklets: number }
  | { readonly _tag: "Register"; readonly execution: number; readonly tasklet: string }
  | { readonly _tag: "Ack"; readonly execution: number; readonly id: number; readonly tasklet: string; readonly contribution: Contribution }
  | { readonly _tag: "Done"; readonly execution: number; readonly tasklet: string; readonly contribution: Contribution }
  /** The counters of the member's instances, every second; the first also carries the job's graph. */
  | {
    readonly _tag: "Metrics"
    readonly execution: number
    readonly instances: ReadonlyArray<InstanceMetrics>
    readonly graph?: ManagementJobs.Graph | undefined
  }
  /** The member's tasklets all ended; it waits for Finish. */
  | { readonly _tag: "Ended"; readonly execution: number }
  | { readonly _tag: "Finished"; readonly execution: number }
  /** `linkClosed`: the execution failed because the member's link to another closed (that other one likely died). */
  | { readonly _tag: "Failed"; readonly execution: number; readonly reason: string; readonly linkClosed?: boolean | undefined }
  | { readonly _tag: "Cancelled"; readonly execution: number }
  /** The member wants to leave the cluster (gracefully): the coordinator answers Exit when it may. */
  | { readonly _tag: "Leave" }
