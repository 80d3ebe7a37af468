/**
 * Tributary on PostgreSQL.
 *
 * @module @tributary/postgres
 */
export * as PostgresSnapshotStore from "./SnapshotStore.ts"
export * as PostgresClient from "./Client.ts"
export { PostgresError } from "./Client.ts"
export * as PostgresSource from "./query/PostgresSource.ts"
export * as PostgresSink from "./sinks/PostgresSink.ts"
export * as PostgresCdc from "./cdc/PostgresCdc.ts"
export * as PostgresLookup from "./lookup/PostgresLookup.ts"
