/**
 * The group coordinator's membership state machine (Empty -> PreparingRebalance -> CompletingRebalance ->
 * Stable): a join starts a rebalance that completes when every member has rejoined (or the rebalance timeout
 * drops the stragglers), the leader's SyncGroup hands out assignments, and members whose session lapses are
 * removed, triggering the next rebalance.
 */
import { randomUUID } from "node:crypto"
import { ErrorCode } from "./Errors.ts"

/** A group's state. */
export type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable"

/** The JoinGroup response for one member. */
export interface JoinResult {
  readonly error: number
  readonly generation: number
  readonly protocol: string
  readonly leader: string
  readonly memberId: string
  readonly members: ReadonlyArray<{ readonly id: string; readonly instanceId: string | null; readonly metadata: Buffer }>
}

/** A JoinGroup request's member fields. */
export interface JoinRequest {
  readonly memberId: string
  readonly instanceId: string | null
  readonly clientId: string
  readonly clientHost: string
  readonly sessionTimeoutMs: number
  readonly rebalanceTimeoutMs: number
  readonly protocolType: string
  readonly protocols: ReadonlyArray<readonly [string, Buffer]>
}

interface Member {
  readonly id: string
  request: JoinRequest
  assignment: Buffer
  join: ((r: JoinResult) => void) | undefined
  sync: ((r: { error: number; assignment: Buffer }) => void) | undefined
  session: NodeJS.Timeout | undefined
}

const failed = (error: number, memberId: string): JoinResult => ({
  error,
  generation: -1,
  protocol: "",
  leader: "",
  memberId,
  members: []
})

/** One consumer group. */
export class Group {
  state: GroupState = "Empty"
  generation = 0
  protocolType = ""
  protocol = ""
  leader = ""
  readonly members = new Map<string, Member>()
  private rebalance: NodeJS.Timeout | undefined
  readonly id: string
  constructor(id: string) {
    this.id = id
  }

  join(request: JoinRequest): Promise<JoinResult> {
    const mismatched = this.members.size > 0 && request.protocolType !== this.protocolType
    if (request.protocols.length === 0 || mismatched) {
      return Promise.resolve(failed(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, request.memberId))
    }
    let member = this.members.get(request.memberId)
    if (member === undefined) {
      if (request.memberId !== "") return Promise.resolve(failed(ErrorCode.UNKNOWN_MEMBER_ID, request.memberId))
      const id = `${request.clientId}-${randomUUID()}`
      member = { id, request, assignment: Buffer.alloc(0), join: undefined, sync: undefined, session: undefined }
      this.members.set(id, member)
    }
    member.request = request
    this.protocolType = request.protocolType
    // A join repeated on another connection (the client gave up on the first) supersedes the pending one.
    member.join?.(failed(ErrorCode.REBALANCE_IN_PROGRESS, member.id))
    const joined = member
    const result = new Promise<JoinResult>((resolve) => {
      joined.join = resolve
    })
    if (this.state !== "PreparingRebalance") this.prepareRebalance()
    else this.maybeCompleteJoin()
    return result
  }

  private prepareRebalance(): void {
    this.state = "PreparingRebalance"
    for (const m of this.members.values()) {
      m.sync?.({ error: ErrorCode.REBALANCE_IN_PROGRESS, assignment: Buffer.alloc(0) })
      m.sync = undefined
    }
    const timeout = Math.max(0, ...[...this.members.values()].map((m) => m.request.rebalanceTimeoutMs))
    clearTimeout(this.rebalance)
    this.rebalance = setTimeout(() => this.completeJoin(), timeout)
    this.maybeCompleteJoin()
  }

  private maybeCompleteJoin(): void {
    if (this.state !== "PreparingRebalance") return
    for (const m of this.members.values()) if (m.join === undefined) return
    this.completeJoin()
  }

  private completeJoin(): void {
    clearTimeout(this.rebalance)
    for (const m of this.members.values()) if (m.join === undefined) this.remove(m)
    this.generation++
    if (this.members.size === 0) {
      this.state = "Empty"
      return
    }
    const all = [...this.members.values()]
    if (!this.members.has(this.leader)) this.leader = all[0]!.id
    const leader = this.members.get(this.leader)!
    this.protocol =
      leader.request.protocols.find(([name]) => all.every((m) => m.request.protocols.some(([n]) => n === name)))?.[0] ??
      leader.request.protocols[0]![0]
    this.state = "CompletingRebalance"
    const metadata = (m: Member) => m.request.protocols.find(([n]) => n === this.protocol)?.[1] ?? Buffer.alloc(0)
    const members = all.map((m) => ({ id: m.id, instanceId: m.request.instanceId, metadata: metadata(m) }))
    for (const m of all) {
      const join = m.join!
      m.join = undefined
      this.touch(m)
      join({
        error: ErrorCode.NONE,
        generation: this.generation,
        protocol: this.protocol,
        leader: this.leader,
        memberId: m.id,
        members: m.id === this.leader ? members : []
      })
    }
  }

  private validate(memberId: string, generation: number): number {
    const member = this.members.get(memberId)
    if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID
    if (generation !== this.generation) return ErrorCode.ILLEGAL_GENERATION
    this.touch(member)
    return ErrorCode.NONE
  }

  sync(
    memberId: string,
    generation: number,
    assignments: ReadonlyArray<readonly [string, Buffer]>
  ): Promise<{ error: number; assignment: Buffer }> {
    const error = this.validate(memberId, generation)
    if (error !== ErrorCode.NONE) return Promise.resolve({ error, assignment: Buffer.alloc(0) })
    if (this.state === "PreparingRebalance") {
      return Promise.resolve({ error: ErrorCode.REBALANCE_IN_PROGRESS, assignment: Buffer.alloc(0) })
    }
    const member = this.members.get(memberId)!
    if (this.state === "Stable") return Promise.resolve({ error: ErrorCode.NONE, assignment: member.assignment })
    if (memberId === this.leader) {
      for (const [id, assignment] of assignments) {
        const m = this.members.get(id)
        if (m !== undefined) m.assignment = assignment
      }
      this.state = "Stable"
      for (const m of this.members.values()) {
        m.sync?.({ error: ErrorCode.NONE, assignment: m.assignment })
        m.sync = undefined
      }
      return Promise.resolve({ error: ErrorCode.NONE, assignment: member.assignment })
    }
    member.sync?.({ error: ErrorCode.REBALANCE_IN_PROGRESS, assignment: Buffer.alloc(0) })
    return new Promise((resolve) => {
      member.sync = resolve
    })
  }

  heartbeat(memberId: string, generation: number): number {
    const error = this.validate(memberId, generation)
    if (error !== ErrorCode.NONE) return error
    return this.state === "PreparingRebalance" ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE
  }

  /** Whether an OffsetCommit from this member/generation is allowed (generation -1: a standalone commit). */
  canCommit(memberId: string, generation: number): number {
    if (generation < 0 && memberId === "") return ErrorCode.NONE
    const error = this.validate(memberId, generation)
    if (error !== ErrorCode.NONE) return error
    return this.state === "CompletingRebalance" ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE
  }

  leave(memberId: string): number {
    const member = this.members.get(memberId)
    if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID
    this.removeAndRebalance(member)
    return ErrorCode.NONE
  }

  private removeAndRebalance(member: Member): void {
    this.remove(member)
    if (this.members.size === 0 && this.state !== "PreparingRebalance") {
      this.state = "Empty"
      this.generation++
    } else if (this.state === "PreparingRebalance") this.maybeCompleteJoin()
    else this.prepareRebalance()
  }

  private remove(member: Member): void {
    clearTimeout(member.session)
    member.join?.(failed(ErrorCode.UNKNOWN_MEMBER_ID, member.id))
    member.sync?.({ error: ErrorCode.UNKNOWN_MEMBER_ID, assignment: Buffer.alloc(0) })
    this.members.delete(member.id)
  }

  /** Restarts a member's session timer; a lapsed session removes it (not while its join is pending). */
  private touch(member: Member): void {
    clearTimeout(member.session)
    member.session = setTimeout(() => {
      if (member.join === undefined && this.members.get(member.id) === member) this.removeAndRebalance(member)
    }, member.request.sessionTimeoutMs)
    member.session.unref()
  }

  close(): void {
    clearTimeout(this.rebalance)
    for (const m of this.members.values()) clearTimeout(m.session)
  }
}
