/**
 * Deserializers of record values (and keys): bytes, UTF-8 strings, JSON, an
 * Effect Schema over JSON, Avro (avsc). Each decodes one value and throws on
 * bad input; the source turns that into a `KafkaDecodeError` naming the record.
 */
import avro from "avsc"
import { Schema } from "effect"

/** Decodes one value; throws when the bytes are not one. */
export type Deserializer<V> = (bytes: Buffer) => V

/** The bytes as they are. */
export const bytes: Deserializer<Buffer> = (b) => b

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** Strict UTF-8. */
export const string: Deserializer<string> = (b) => utf8.decode(b)

/** JSON (UTF-8). */
export const json: Deserializer<unknown> = (b) => JSON.parse(utf8.decode(b))

/** JSON decoded by `schema` (its decoding error is the cause). */
export const schema = <S extends Schema.ConstraintDecoder<unknown>>(s: S): Deserializer<S["Type"]> => {
  const decode = Schema.decodeUnknownSync(s)
  return (b) => decode(json(b))
}

/** Avro binary of `type` (an avsc schema definition). */
export const avroOf = <V = unknown>(type: avro.Schema): Deserializer<V> => {
  const t = avro.Type.forSchema(type)
  return (b) => t.fromBuffer(b) as V
}
