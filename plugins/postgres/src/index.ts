/** Tributary on PostgreSQL. */
export * as PostgresSnapshotStore from "./SnapshotStore.ts"
