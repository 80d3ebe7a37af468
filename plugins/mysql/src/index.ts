/**
 * Tributary on MySQL and MariaDB, on the `mysql2` client: a query source
 * with key-range splits, an upsert sink and an exactly-once insert sink over XA.
 *
 * ```ts
 * const job = Effect.gen(function*() {
 *   const orders = yield* MysqlSource.query({ table: "orders", key: "id", splits: 16 })
 *   const totals = yield* MysqlSink.upsert({ table: "totals", columns: ["id", "amount"], key: ["id"] })
 *   yield* Tributary.run(Pipeline.from(orders).pipe(Stage.writeTo(totals)))
 * }).pipe(Effect.provide(MysqlClient.layer({ host: "127.0.0.1", user: "app" })))
 * ```
 *
 * @module @tributary/mysql
 */
export * as MysqlClient from "./Client.ts"
export * as MysqlSource from "./Source.ts"
export * as MysqlSink from "./Sink.ts"
export * as MysqlXaSink from "./XaSink.ts"
