/**
 * Tributary on PostgreSQL.
 *
 * @module @tributary/postgres
 */
export * as PostgresSnapshotStore from "./SnapshotStore.ts"
