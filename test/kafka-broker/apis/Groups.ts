/** FindCoordinator and the group APIs: membership (Join/Sync/Heartbeat/Leave), offsets, Describe/ListGroups. */
import { Writer } from "../Codec.ts"
import { type Api, type Context, throttle } from "../Context.ts"
import { ErrorCode } from "../Errors.ts"
import { Group } from "../Groups.ts"

const group = (ctx: Context, id: string): Group => {
  let g = ctx.groups.get(id)
  if (g === undefined) {
    g = new Group(id)
    ctx.groups.set(id, g)
  }
  return g
}

const findCoordinator: Api = {
  key: 10,
  name: "FindCoordinator",
  min: 0,
  max: 2,
  handle: (ctx, { version }) => {
    const w = throttle(new Writer(), version, 1).int16(ErrorCode.NONE)
    if (version >= 1) w.string(null)
    return w.int32(0).string(ctx.host).int32(ctx.port)
  }
}

const joinGroup: Api = {
  key: 11,
  name: "JoinGroup",
  min: 0,
  max: 5,
  handle: async (ctx, { version, body, clientId, clientHost }) => {
    const groupId = body.string()
    const sessionTimeoutMs = body.int32()
    const rebalanceTimeoutMs = version >= 1 ? body.int32() : sessionTimeoutMs
    const memberId = body.string()
    const instanceId = version >= 5 ? body.nullableString() : null
    const protocolType = body.string()
    const protocols = body.array((r) => [r.string(), r.bytes() ?? Buffer.alloc(0)] as const)
    const r = await group(ctx, groupId).join({
      memberId,
      instanceId,
      clientId,
      clientHost,
      sessionTimeoutMs,
      rebalanceTimeoutMs,
      protocolType,
      protocols
    })
    const w = throttle(new Writer(), version, 2)
    w.int16(r.error).int32(r.generation).string(r.protocol).string(r.leader).string(r.memberId)
    return w.array(r.members, (w, m) => {
      w.string(m.id)
      if (version >= 5) w.string(m.instanceId)
      w.bytes(m.metadata)
    })
  }
}

const syncGroup: Api = {
  key: 14,
  name: "SyncGroup",
  min: 0,
  max: 3,
  handle: async (ctx, { version, body }) => {
    const groupId = body.string()
    const generation = body.int32()
    const memberId = body.string()
    if (version >= 3) body.nullableString()
    const assignments = body.array((r) => [r.string(), r.bytes() ?? Buffer.alloc(0)] as const)
    const g = ctx.groups.get(groupId)
    const r =
      g === undefined
        ? { error: ErrorCode.UNKNOWN_MEMBER_ID, assignment: Buffer.alloc(0) }
        : await g.sync(memberId, generation, assignments)
    return throttle(new Writer(), version, 1).int16(r.error).bytes(r.assignment)
  }
}

const heartbeat: Api = {
  key: 12,
  name: "Heartbeat",
  min: 0,
  max: 3,
  handle: (ctx, { version, body }) => {
    const groupId = body.string()
    const generation = body.int32()
    const memberId = body.string()
    const error = ctx.groups.get(groupId)?.heartbeat(memberId, generation) ?? ErrorCode.UNKNOWN_MEMBER_ID
    return throttle(new Writer(), version, 1).int16(error)
  }
}

const leaveGroup: Api = {
  key: 13,
  name: "LeaveGroup",
  min: 0,
  max: 3,
  handle: (ctx, { version, body }) => {
    const groupId = body.string()
    const g = ctx.groups.get(groupId)
    const leave = (id: string) => g?.leave(id) ?? ErrorCode.UNKNOWN_MEMBER_ID
    const w = throttle(new Writer(), version, 1)
    if (version < 3) return w.int16(leave(body.string()))
    const members = body.array((r) => [r.string(), r.nullableString()] as const)
    return w.int16(ErrorCode.NONE).array(members, (w, [id, instance]) => w.string(id).string(instance).int16(leave(id)))
  }
}

const offsetCommit: Api = {
  key: 8,
  name: "OffsetCommit",
  min: 2,
  max: 7,
  handle: (ctx, { version, body }) => {
    const groupId = body.string()
    const generation = body.int32()
    const memberId = body.string()
    if (version >= 7) body.nullableString()
    if (version <= 4) body.int64()
    const topics = body.array((r) => {
      const name = r.string()
      return [
        name,
        r.array((r) => {
          const index = r.int32()
          const offset = r.int64n()
          if (version >= 6) r.int32()
          return [index, offset, r.nullableString()] as const
        })
      ] as const
    })
    const g = ctx.groups.get(groupId)
    const allowed =
      g === undefined
        ? generation < 0 ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID
        : g.canCommit(memberId, generation)
    const w = throttle(new Writer(), version, 3)
    return w.array(topics, (w, [topic, partitions]) => {
      w.string(topic).array(partitions, (w, [partition, offset, metadata]) => {
        const error =
          allowed !== ErrorCode.NONE
            ? allowed
            : ctx.store.partition(topic, partition) === undefined
              ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
              : ErrorCode.NONE
        if (error === ErrorCode.NONE) ctx.store.apply({ k: "offset", group: groupId, topic, partition, offset, metadata })
        w.int32(partition).int16(error)
      })
    })
  }
}

const offsetFetch: Api = {
  key: 9,
  name: "OffsetFetch",
  min: 1,
  max: 5,
  handle: (ctx, { version, body }) => {
    const groupId = body.string()
    const requested = body.nullableArray((r) => [r.string(), r.array((r) => r.int32())] as const)
    const topics =
      requested ??
      [...ctx.store.topics.entries()]
        .map(([name, parts]) => [name, parts.map((_, i) => i).filter((i) => ctx.store.committed(groupId, name, i))] as const)
        .filter(([, ps]) => ps.length > 0)
    const w = throttle(new Writer(), version, 3)
    w.array(topics, (w, [topic, partitions]) => {
      w.string(topic).array(partitions, (w, partition) => {
        const c = ctx.store.committed(groupId, topic, partition)
        w.int32(partition).int64(c?.offset ?? -1)
        if (version >= 5) w.int32(-1)
        w.string(c?.metadata ?? "").int16(ErrorCode.NONE)
      })
    })
    return version >= 2 ? w.int16(ErrorCode.NONE) : w
  }
}

const describeGroups: Api = {
  key: 15,
  name: "DescribeGroups",
  min: 0,
  max: 2,
  handle: (ctx, { version, body }) => {
    const ids = body.array((r) => r.string())
    const w = throttle(new Writer(), version, 1)
    return w.array(ids, (w, id) => {
      const g = ctx.groups.get(id)
      w.int16(ErrorCode.NONE).string(id).string(g?.state ?? "Dead").string(g?.protocolType ?? "").string(g?.protocol ?? "")
      w.array([...(g?.members.values() ?? [])], (w, m) => {
        const metadata = m.request.protocols.find(([n]) => n === g!.protocol)?.[1] ?? Buffer.alloc(0)
        w.string(m.id).string(m.request.clientId).string(m.request.clientHost).bytes(metadata).bytes(m.assignment)
      })
    })
  }
}

const listGroups: Api = {
  key: 16,
  name: "ListGroups",
  min: 0,
  max: 2,
  handle: (ctx, { version }) =>
    throttle(new Writer(), version, 1)
      .int16(ErrorCode.NONE)
      .array([...ctx.groups.values()], (w, g) => w.string(g.id).string(g.protocolType))
}

/** The group coordinator's APIs. */
export const groupApis: ReadonlyArray<Api> = [
  findCoordinator,
  joinGroup,
  syncGroup,
  heartbeat,
  leaveGroup,
  offsetCommit,
  offsetFetch,
  describeGroups,
  listGroups
]
