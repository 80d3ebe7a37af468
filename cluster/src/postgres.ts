/**
 * A cluster across machines (`@tributary/cluster/postgres`): members on
 * effect/cluster and the clients that submit jobs to them, which keep the
 * cluster's state in PostgreSQL. Its packages, `@effect/sql-pg` and
 * `@tributary/postgres`, are optional peer dependencies: one machine does
 * without them.
 *
 * @module @tributary/cluster/postgres
 */
export * as Client from "./client/Client.ts"
export * as Member from "./membership/Member.ts"
