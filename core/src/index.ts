/**
 * Tributary: typed stream and batch pipelines on Effect.
 *
 * ```ts
 * const counts = Pipeline.from(Sources.fromIterable(lines)).pipe(
 *   Stage.flatMap((line: string) => line.split(/\W+/)),
 *   Stage.groupingKey((word) => word),
 *   Stage.aggregate(Aggregate.counting()),
 *   Stage.writeTo(Sinks.logger()))
 * yield* Tributary.run(counts)
 * ```
 *
 * @module @tributary/core
 */
export * as Aggregate from "./aggregate/Aggregate.ts"
export * as Pipeline from "./pipeline/Pipeline.ts"
export * as Stage from "./pipeline/Stage.ts"
export * as Window from "./window/Window.ts"
export * as Source from "./pipeline/Source.ts"
export * as Splits from "./connector/Splits.ts"
export * as Retry from "./connector/Retry.ts"
export * as Arrival from "./connector/Arrival.ts"
export * as Transactional from "./connector/Transactional.ts"
export * as Sink from "./pipeline/Sink.ts"
export * as Sources from "./connectors/Sources.ts"
export * as Sinks from "./connectors/Sinks.ts"
export * as Tributary from "./job/Job.ts"
export * as RestartPolicy from "./job/RestartPolicy.ts"
export * as Platform from "./platform/Platform.ts"
export * as SnapshotStore from "./snapshot/SnapshotStore.ts"
export { SnapshotError } from "./snapshot/Snapshot.ts"
export * from "./errors.ts"
export type { Operator } from "./operator/Operator.ts"
export type { InstanceMetrics, JobException, JobMetrics, JobSummary, SnapshotInfo } from "./runtime/Metrics.ts"
export * as Telemetry from "./job/Telemetry.ts"
export * as Progress from "./job/Progress.ts"
export * as Management from "./management/Management.ts"
export * as ManagementApi from "./management/Api.ts"
export * as ManagementJobs from "./management/Jobs.ts"
// What the cluster runtime builds on: placement and the snapshot protocol.
export type { Placement } from "./runtime/Execution.ts"
export type { Snapshot } from "./snapshot/Snapshot.ts"
export { remember } from "./runtime/Metrics.ts"
export { Coordinator, FINAL_SNAPSHOT, type Contribution, type Guarantee, type Snapshots } from "./snapshot/Coordinator.ts"
export type { Outlet } from "./runtime/Channel.ts"
export type { Item } from "./runtime/Control.ts"
export { Channel } from "./runtime/Channel.ts"
export { stableHash, partitionOf } from "./plan/partition.ts"
