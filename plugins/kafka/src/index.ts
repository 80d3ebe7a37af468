/**
 * Tributary on Apache Kafka: a source of partitions as splits (exactly-once,
 * rescalable, per-partition event time) and sinks at-least-once or
 * exactly-once on Kafka transactions.
 *
 * @module @tributary/kafka
 */
export * as KafkaClient from "./Client.ts"
export * as KafkaSource from "./Source.ts"
export * as KafkaSink from "./Sink.ts"
export * as KafkaSerde from "./Serde.ts"
export { murmur2 } from "./Internals.ts"
