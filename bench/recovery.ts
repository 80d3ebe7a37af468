/**
 * Recovery after a member is killed: a keyed job at a fixed rate with
 * exactly-once and a snapshot every second; one member gets SIGKILL.
 * - On a 2-member local cluster (the coordinator in this process), measured
 *   from the kill: until the coordinator has redeployed the job on the member
 *   left, and until results flow again (the first batch a sink of the new
 *   execution gets).
 * - On 3 `tributary member` processes over PostgreSQL (PGURL), the member
 *   running the coordinator is killed: until another member runs the
 *   coordinator (the engine moved the singleton), and until results flow again.
 */
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import postgresClient from "postgres"
import { LocalCluster } from "../cluster/src/index.ts"
import { Client, Member } from "../cluster/src/postgres.ts"
import { Platform } from "../core/src/index.ts"
import { type Benchmark, type Measurement, percentile } from "./harness.ts"

const jobs = path.join(import.meta.dirname, "cluster-jobs.ts")
const RATE = 100_000
const postgres = process.env.PGURL ?? "postgres://postgres@127.0.0.1:5432/test"
const cli = path.join(import.meta.dirname, "..", "cluster", "src", "cli.ts")
const secret = "the recovery benchmark's secret"

/** The wall time of the first batch noted in `out` at or after `from`. */
const firstNoteFrom = (out: string, from: number) =>
  fs.readdirSync(out).flatMap((f) => fs.readFileSync(path.join(out, f), "utf8").trim().split("\n"))
    .map(Number)
    .filter((time) => time >= from)
    .reduce((first, time) => Math.min(first, time), Infinity)

const once = () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-recovery-"))
  process.env.BENCH_OUT = out
  process.env.BENCH_RATE = String(RATE)
  process.env.BENCH_COUNT = String(RATE * 8)
  return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const job = yield* LocalCluster.start({
      module: jobs,
      export: "recovering",
      members: 2,
      processingGuarantee: "exactly-once",
      snapshotInterval: "1 second"
    })
    const status = () => Effect.runSync(job.status)
    yield* Effect.repeat(Effect.sleep("50 millis"), { until: () => status().snapshot >= 3 })
    const killed = Date.now()
    process.kill(status().members[1]!.pid!, "SIGKILL")
    yield* Effect.repeat(Effect.sleep("1 millis"), { until: () => status().execution >= 2 })
    const redeployedAt = Date.now()
    yield* job.join
    // The old execution is cancelled everywhere before the new one is deployed: a batch noted
    // after the redeployment is the new execution's.
    const resumed = firstNoteFrom(out, redeployedAt)
    fs.rmSync(out, { recursive: true, force: true })
    return { redeployed: redeployedAt - killed, resumed: resumed - killed }
  }).pipe(Effect.provide(Platform.layer))))
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const until = async (what: string, condition: () => boolean, ms = 60_000) => {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`recovery: timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 1))
  }
}

interface Started {
  readonly child: ChildProcess
  log: string
  /** The newest coordinator epoch it announced running (0: none), and when this benchmark saw that. */
  epoch: number
  since: number
}

/** A member process started with the CLI, noting into `out`. */
const member = async (cluster: string, index: number, out: string): Promise<Started> => {
  const child = spawn(process.execPath, ["--conditions=source", cli, "member", "--cluster", cluster, "--postgres", postgres, "--port", String(await freePort())], {
    env: { ...process.env, TRIBUTARY_SECRET: secret, TRIBUTARY_MEMBER: String(index), BENCH_OUT: out },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const s: Started = { child, log: "", epoch: 0, since: 0 }
  const read = (d: unknown) => {
    s.log += String(d)
    const epoch = Math.max(0, ...[...s.log.matchAll(/coordinator \(epoch (\d+)\) listens/g)].map((m) => Number(m[1])))
    if (epoch > s.epoch) Object.assign(s, { epoch, since: Date.now() })
  }
  child.stdout!.on("data", read)
  child.stderr!.on("data", read)
  return s
}

/** Drops what a cluster left in the database: its engine tables and registry rows, its job's snapshots. */
const dropCluster = async (cluster: string, job: string) => {
  const sql = postgresClient(postgres, { max: 1, onnotice: () => {} })
  const tables = await sql`select tablename from pg_tables where tablename like ${`${Member.tablePrefix(cluster)}\_%`}`
  for (const { tablename } of tables) await sql.unsafe(`drop table if exists "${tablename}" cascade`)
  await sql`delete from tributary_snapshot_frames where job = ${job}`.catch(() => {})
  await sql`delete from tributary_jobs where cluster = ${cluster}`
  await sql`delete from tributary_coordinators where cluster = ${cluster}`
  await sql.end()
}

/** 3 CLI members run the job; the one running its coordinator gets SIGKILL. */
const coordinatorOnce = async () => {
  const cluster = `bench-recovery-${Date.now() % 1e8}`
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-recovery-"))
  process.env.BENCH_RATE = String(RATE)
  process.env.BENCH_COUNT = String(RATE * 60)
  const members = await Promise.all([0, 1, 2].map((i) => member(cluster, i, out)))
  let name = "none"
  try {
    await until("the members to join a coordinator", () => members.every((m) => /joined the coordinator/.test(m.log)))
    name = await Effect.runPromise(Client.submit({
      cluster,
      postgres,
      secret,
      module: jobs,
      export: "recovering",
      processingGuarantee: "exactly-once",
      snapshotInterval: "1 second"
    }).pipe(Effect.provide(Platform.layer)))
    await until("output", () => firstNoteFrom(out, 0) < Infinity)
    // A few snapshots complete.
    await new Promise((r) => setTimeout(r, 3500))
    const victim = [...members].sort((a, b) => b.epoch - a.epoch)[0]!
    const killed = Date.now()
    victim.child.kill("SIGKILL")
    const successor = () => members.find((m) => m.epoch > victim.epoch)
    await until("another member to run the coordinator", () => successor() !== undefined)
    const tookOver = successor()!.since
    // The old execution stopped on every member with its coordinator: a batch noted since is the new one's.
    await until("resumed output", () => firstNoteFrom(out, tookOver) < Infinity)
    return { tookOver: tookOver - killed, resumed: firstNoteFrom(out, tookOver) - killed }
  } finally {
    for (const m of members) m.child.kill("SIGKILL")
    await dropCluster(cluster, name)
    fs.rmSync(out, { recursive: true, force: true })
  }
}

/** The median of 3 runs of `once`, each run's figures beside it. */
const measure = async (
  variant: string,
  once: () => Promise<Record<string, number> & { readonly resumed: number }>
): Promise<Measurement> => {
  const runs: Array<Record<string, number> & { readonly resumed: number }> = []
  for (let i = 0; i < 3; i++) runs.push(await once())
  const each = (key: string) => runs.map((r) => r[key]!).sort((a, b) => a - b).join(", ")
  return {
    benchmark: "recovery",
    variant,
    unit: "ms to resumed output (median of 3)",
    value: percentile(runs.map((r) => r.resumed).sort((a, b) => a - b), 50),
    details: Object.fromEntries(Object.keys(runs[0]!).map((key) => [`${key} ms (each run)`, each(key)]))
  }
}

export const recovery: Benchmark = {
  name: "recovery",
  description: "exactly-once (1 s snapshots): time from a member's SIGKILL to resumed output, the coordinator's own member's among them",
  run: async () => [
    await measure(`SIGKILL of 1 of 2 members, ${RATE / 1000}k events/s, keyed rolling count`, once),
    await measure(`SIGKILL of the coordinator's member (1 of 3, PostgreSQL), ${RATE / 1000}k events/s, keyed rolling count`, coordinatorOnce)
  ]
}
