/** ApiVersions, Metadata and topic administration (CreateTopics, CreatePartitions, DeleteTopics). */
import { Writer } from "../Codec.ts"
import { type Api, type Context, throttle } from "../Context.ts"
import { ErrorCode } from "../Errors.ts"

const apiVersions: Api = {
  key: 18,
  name: "ApiVersions",
  min: 0,
  max: 3,
  handle: (ctx, { version }) => {
    const w = new Writer().int16(ErrorCode.NONE)
    if (version >= 3) {
      w.compactArray(ctx.apis, (w, a) => w.int16(a.key).int16(a.min).int16(a.max).tags())
      return w.int32(0).tags()
    }
    w.array(ctx.apis, (w, a) => w.int16(a.key).int16(a.min).int16(a.max))
    return throttle(w, version, 1)
  }
}

/** Creates `name` with `partitions` partitions; an error code if it exists or the count is invalid. */
export const createTopic = (ctx: Context, name: string, partitions: number): number => {
  if (ctx.store.topics.has(name)) return ErrorCode.TOPIC_ALREADY_EXISTS
  if (partitions < 1 || name.length === 0) return ErrorCode.INVALID_PARTITIONS
  ctx.store.apply({ k: "topic", name, partitions })
  return ErrorCode.NONE
}

const metadata: Api = {
  key: 3,
  name: "Metadata",
  min: 0,
  max: 6,
  handle: (ctx, { version, body }) => {
    const requested = version === 0 ? body.array((r) => r.string()) : body.nullableArray((r) => r.string())
    const allowCreate = version >= 4 ? body.bool() : true
    const names = requested === null || (version === 0 && requested.length === 0) ? [...ctx.store.topics.keys()] : requested
    if (ctx.autoCreateTopics && allowCreate) {
      for (const name of names) if (!ctx.store.topics.has(name)) createTopic(ctx, name, ctx.defaultPartitions)
    }
    const w = throttle(new Writer(), version, 3)
    w.array([0], (w) => {
      w.int32(0).string(ctx.host).int32(ctx.port)
      if (version >= 1) w.string(null)
    })
    if (version >= 2) w.string("tributary-test")
    if (version >= 1) w.int32(0)
    w.array(names, (w, name) => {
      const parts = ctx.store.topics.get(name)
      w.int16(parts === undefined ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : ErrorCode.NONE).string(name)
      if (version >= 1) w.bool(false)
      w.array((parts ?? []).map((_, i) => i), (w, i) => {
        w.int16(ErrorCode.NONE).int32(i).int32(0)
        w.array([0], (w, n) => w.int32(n)).array([0], (w, n) => w.int32(n))
        if (version >= 5) w.int32(0)
      })
    })
    return w
  }
}

const createTopics: Api = {
  key: 19,
  name: "CreateTopics",
  min: 0,
  max: 4,
  handle: (ctx, { version, body }) => {
    const topics = body.array((r) => {
      const name = r.string()
      const partitions = r.int32()
      r.int16()
      r.array((r) => [r.int32(), r.array((r) => r.int32())])
      r.array((r) => [r.string(), r.nullableString()])
      return [name, partitions] as const
    })
    body.int32()
    const validateOnly = version >= 1 && body.bool()
    const w = throttle(new Writer(), version, 2)
    return w.array(topics, (w, [name, partitions]) => {
      const count = partitions === -1 ? ctx.defaultPartitions : partitions
      const error = validateOnly
        ? ctx.store.topics.has(name) ? ErrorCode.TOPIC_ALREADY_EXISTS : ErrorCode.NONE
        : createTopic(ctx, name, count)
      w.string(name).int16(error)
      if (version >= 1) w.string(null)
    })
  }
}

const createPartitions: Api = {
  key: 37,
  name: "CreatePartitions",
  min: 0,
  max: 1,
  handle: (ctx, { body }) => {
    const topics = body.array((r) => {
      const name = r.string()
      const count = r.int32()
      r.nullableArray((r) => r.array((r) => r.int32()))
      return [name, count] as const
    })
    body.int32()
    const validateOnly = body.bool()
    return new Writer().int32(0).array(topics, (w, [name, count]) => {
      const parts = ctx.store.topics.get(name)
      const error =
        parts === undefined
          ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
          : count <= parts.length
            ? ErrorCode.INVALID_PARTITIONS
            : ErrorCode.NONE
      if (error === ErrorCode.NONE && !validateOnly) ctx.store.apply({ k: "topic", name, partitions: count })
      w.string(name).int16(error).string(null)
    })
  }
}

const deleteTopics: Api = {
  key: 20,
  name: "DeleteTopics",
  min: 0,
  max: 3,
  handle: (ctx, { version, body }) => {
    const names = body.array((r) => r.string())
    const w = throttle(new Writer(), version, 1)
    return w.array(names, (w, name) => {
      const known = ctx.store.topics.has(name)
      if (known) ctx.store.apply({ k: "deleteTopic", name })
      w.string(name).int16(known ? ErrorCode.NONE : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    })
  }
}

/** The administrative APIs. */
export const adminApis: ReadonlyArray<Api> = [apiVersions, metadata, createTopics, createPartitions, deleteTopics]
