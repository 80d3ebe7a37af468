/**
 * A cluster of member processes started with the `tributary member` CLI:
 * effect/cluster runners whose runner storage, registry and snapshots live in
 * the real PostgreSQL (PGURL, default 127.0.0.1:5432/test). Members are killed
 * with SIGKILL mid-job, the coordinator's own member among them.
 */
import { Effect } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import postgresClient from "postgres"
import { afterEach, describe, expect, it } from "vitest"
import { Link } from "../cluster/src/index.ts"
import { Client, Member } from "../cluster/src/postgres.ts"
import { Platform } from "../core/src/index.ts"
import { committedLines, expectEachRecordOnce, expectedWindows, expectExactOutput, listeningAddresses, runtimeArgs } from "./cluster-helpers.ts"

const postgres = process.env.PGURL ?? "postgres://postgres@127.0.0.1:5432/test"
const cli = path.join(import.meta.dirname, "..", "cluster", "src", "cli.ts")
const jobs = path.join(import.meta.dirname, "fixtures", "cluster-jobs.ts")
const secret = "the cluster secret of the tests"

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

interface Started {
  child: ChildProcess
  /** Its runner's port (effect/cluster's traffic). */
  port: number
  log: string
}
const started: Array<Started> = []
const clusters: Array<string> = []
afterEach(async () => {
  for (const s of started.splice(0)) s.child.kill("SIGKILL")
  // Each test's cluster leaves nothing in the database: its engine tables, registry rows, snapshots.
  const sql = postgresClient(postgres, { max: 1, onnotice: () => {} })
  for (const cluster of clusters.splice(0)) {
    const tables = await sql`select tablename from pg_tables where tablename like ${`${Member.tablePrefix(cluster)}\_%`}`
    for (const { tablename } of tables) await sql.unsafe(`drop table if exists "${tablename}" cascade`)
    const [{ jobs, frames }] = await sql`select to_regclass('tributary_jobs') as jobs, to_regclass('tributary_snapshot_frames') as frames`
    if (jobs && frames) await sql`delete from tributary_snapshot_frames where job in (select name from tributary_jobs where cluster = ${cluster})`
    if (jobs) await sql`delete from tributary_jobs where cluster = ${cluster}`
    if (jobs) await sql`delete from tributary_coordinators where cluster = ${cluster}`
  }
  await sql.end()
})

const newCluster = (what: string) => {
  const cluster = `t-${what}-${Platform.runtime}-${Date.now() % 1e8}`
  clusters.push(cluster)
  return cluster
}

/** Starts a member process with the CLI; its output (logs) is kept. */
const member = async (cluster: string, out: string, flags: ReadonlyArray<string> = []): Promise<Started> => {
  const s = { log: "" } as Started
  let attempts = 0
  const launch = async () => {
    attempts++
    s.port = await freePort()
    s.child = spawn(process.execPath, [...runtimeArgs, cli, "member", "--cluster", cluster, "--postgres", postgres, "--port", String(s.port), ...flags], {
      env: { ...process.env, TRIBUTARY_SECRET: secret, OUT_DIR: out },
      stdio: ["ignore", "pipe", "pipe"]
    })
    s.child.stdout!.on("data", (d) => (s.log += String(d)))
    s.child.stderr!.on("data", (d) => (s.log += String(d)))
    // The port was free when picked, but another process may bind it first (the runner then cannot open it): another one.
    s.child.once("close", () => {
      if (attempts < 3 && !s.log.includes("Listening on") && s.log.includes("tributary: Open")) void launch()
    })
  }
  await launch()
  started.push(s)
  return s
}

const until = async (what: string, condition: () => boolean, ms = 30_000) => {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${started.map((s) => s.log.slice(-1500)).join("\n---\n")}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The newest coordinator epoch a member announced (0: none). */
const epochOf = (s: Started) => Math.max(0, ...[...s.log.matchAll(/coordinator \(epoch (\d+)\)/g)].map((m) => Number(m[1])))

/** The member running the coordinator now: the one that announced the highest epoch. */
const coordinatorOf = (members: ReadonlyArray<Started>) => [...members].sort((a, b) => epochOf(b) - epochOf(a))[0]!

const run = <A, E>(effect: Effect.Effect<A, E, any>) => Effect.runPromise(Effect.provide(effect, Platform.layer) as Effect.Effect<A, E>)

/**
 * Three members, a job of the fixtures (`streaming` with exactly-once unless told otherwise);
 * `during` acts on the members while it runs (it may start more with `add`).
 */
const threeMembers = async (
  during: (members: Array<Started>, add: () => Promise<Started>) => Promise<void>,
  submit: Partial<Client.SubmitOptions> = {}
) => {
  const cluster = newCluster("job")
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-members-"))
  const members = await Promise.all([member(cluster, out), member(cluster, out), member(cluster, out)])
  await until("the members to join a coordinator", () => members.every((m) => /joined the coordinator/.test(m.log)))
  const name = await run(Client.submit({
    cluster,
    postgres,
    secret,
    module: jobs,
    export: "streaming",
    processingGuarantee: "exactly-once",
    snapshotInterval: "300 millis",
    ...submit
  }))
  const add = async () => {
    const m = await member(cluster, out)
    members.push(m)
    return m
  }
  await during(members, add)
  await run(Client.awaitJob({ cluster, postgres, name }))
  return { out, members }
}

/** How a member process ended: 0 when it left cleanly (Deno's node:child_process reports the signal it was sent instead). */
const exitOf = (s: Started) =>
  new Promise<number | string | null>((resolve) =>
    s.child.once("exit", (code, signal) => resolve("Deno" in globalThis && signal === "SIGTERM" ? 0 : code ?? signal)))

/** Lines appended by the `appended` fixture's non-transactional sink. */
const appendedLines = (out: string) =>
  fs.readdirSync(out).filter((f) => f.startsWith("appended-")).flatMap((f) =>
    fs.readFileSync(path.join(out, f), "utf8").split("\n").filter((l) => l.length > 0))

describe("cluster on effect/cluster and PostgreSQL", () => {
  it("a member killed with SIGKILL mid-job: the job recovers on the others, each record once, every window exact", async () => {
    const { out } = await threeMembers(async (members) => {
      await new Promise((r) => setTimeout(r, 2000))
      // Nothing listens beyond 127.0.0.1: each member's runner port and link listener (and the coordinator's control plane).
      for (const m of members) {
        const addresses = listeningAddresses(m.child.pid!)
        expect(addresses).toContain(`127.0.0.1:${m.port}`)
        expect(addresses.length).toBeGreaterThanOrEqual(2)
        expect(addresses.filter((a) => !a.startsWith("127.0.0.1:"))).toEqual([])
      }
      const victim = members.find((m) => m !== coordinatorOf(members))!
      victim.child.kill("SIGKILL")
    })
    expectExactOutput(out)
  })

  it("the coordinator's own member killed with SIGKILL: another member takes the coordinator over and the job completes exactly", async () => {
    let killed: Started | undefined
    const { out, members } = await threeMembers(async (members) => {
      await new Promise((r) => setTimeout(r, 2000))
      killed = coordinatorOf(members)
      killed.child.kill("SIGKILL")
    })
    // Another member announced a newer epoch: it took the coordinator over.
    expect(Math.max(...members.filter((m) => m !== killed).map(epochOf))).toBeGreaterThan(epochOf(killed!))
    expectExactOutput(out)
  })

  /** Waits until the job has stored two snapshots (the newest and one to fall back to). */
  const twoSnapshotsStored = async (job: string) => {
    const sql = postgresClient(postgres, { max: 1, onnotice: () => {} })
    const stored = async () => Number((await sql`select count(distinct id) as n from tributary_snapshot_frames where job = ${job}`)[0]!.n)
    for (const deadline = Date.now() + 30_000; (await stored()) < 2;) {
      if (Date.now() > deadline) throw new Error(`job ${job} stored fewer than two snapshots in 30 s`)
      await new Promise((r) => setTimeout(r, 50))
    }
    await sql.end()
  }
  /** Cuts the frames of the job's newest snapshot short, as a damaged disk would. */
  const damageNewestSnapshot = async (job: string) => {
    const sql = postgresClient(postgres, { max: 1, onnotice: () => {} })
    const [row] = await sql`update tributary_snapshot_frames set data = substring(data from 1 for 20)
      where job = ${job} and id = (select max(id) from tributary_snapshot_frames where job = ${job}) returning id`
    await sql.end()
    return Number(row!.id)
  }
  const jobName = () => `streaming-${Platform.runtime}-${Date.now()}`

  it("a damaged newest snapshot in PostgreSQL, then a SIGKILLed member: the job restores the one before, each record once", async () => {
    let damaged = 0
    const name = jobName()
    const { out, members } = await threeMembers(async (members) => {
      await new Promise((r) => setTimeout(r, 2000))
      // Frozen first: no snapshot can complete without its acknowledgement, so the damaged one is
      // still the newest when the coordinator restarts the job after the kill.
      const victim = members.find((m) => m !== coordinatorOf(members))!
      await twoSnapshotsStored(name)
      // By pid: Deno's ChildProcess.kill sends one signal only, ignoring the calls after it.
      process.kill(victim.child.pid!, "SIGSTOP")
      await new Promise((r) => setTimeout(r, 300))
      damaged = await damageNewestSnapshot(name)
      process.kill(victim.child.pid!, "SIGKILL")
    }, { name })
    const warning = members.map((m) => m.log.match(/snapshot (\d+) in postgres \S+ damaged; restoring snapshot (\d+)/)).find((m) => m)
    expect(warning?.slice(1).map(Number)).toEqual([damaged, damaged - 1])
    expectExactOutput(out)
  })

  it("chaos: the coordinator's member SIGKILLed twice in a row, a damaged snapshot in between: the job completes exactly", async () => {
    const name = jobName()
    const { out, members } = await threeMembers(async (members) => {
      await new Promise((r) => setTimeout(r, 1500))
      const first = coordinatorOf(members)
      first.child.kill("SIGKILL")
      const survivors = members.filter((m) => m !== first)
      await until("another member to take the coordinator over", () => survivors.some((m) => epochOf(m) > epochOf(first)))
      await new Promise((r) => setTimeout(r, 2500))
      await twoSnapshotsStored(name)
      await damageNewestSnapshot(name)
      coordinatorOf(survivors).child.kill("SIGKILL")
    }, { name })
    expect(members.filter((m) => m.child.exitCode === null && m.child.signalCode === null).length).toBe(1)
    expectExactOutput(out)
  })

  it("two sinks at the same default name, a member killed so that fewer members than source instances remain: each sink gets each record once", async () => {
    const { out } = await threeMembers(async (members) => {
      await new Promise((r) => setTimeout(r, 1500))
      members.find((m) => m !== coordinatorOf(members))!.child.kill("SIGKILL")
    }, { export: "twinSinks" })
    expectEachRecordOnce(committedLines(path.join(out, "a")))
    expectEachRecordOnce(committedLines(path.join(out, "b")))
  })

  it("a submit while the coordinator moves follows it to the next one; the same submission again runs no second copy", async () => {
    const cluster = newCluster("move")
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-members-"))
    const members = await Promise.all([member(cluster, out), member(cluster, out), member(cluster, out)])
    await until("the members to join a coordinator", () => members.every((m) => /joined the coordinator/.test(m.log)))
    const killed = coordinatorOf(members)
    killed.child.kill("SIGKILL")
    // The registry names the killed member's coordinator until another takes over.
    const submission: Client.SubmitOptions = {
      cluster,
      postgres,
      secret,
      module: jobs,
      export: "streaming",
      name: "moving",
      processingGuarantee: "exactly-once",
      snapshotInterval: "300 millis"
    }
    expect(await run(Client.submit(submission))).toBe("moving")
    expect(Math.max(...members.filter((m) => m !== killed).map(epochOf))).toBeGreaterThan(epochOf(killed))
    expect(await run(Client.submit(submission))).toBe("moving")
    // Another job under that name is refused.
    const other = await run(Effect.flip(Client.submit({ ...submission, export: "appended" })))
    expect(other.message).toMatch(/another job named "moving" exists/)
    await run(Client.awaitJob({ cluster, postgres, name: "moving" }))
    expectExactOutput(out)
    expect(members.map((m) => m.log).join("").match(/job "moving" completed/g)).toHaveLength(1)
  })

  it("a member that joins is used: the job is rescaled onto it and it produces results", async () => {
    const { out } = await threeMembers(async (_, add) => {
      await new Promise((r) => setTimeout(r, 1000))
      const fourth = await add()
      await until("the fourth member to join", () => /joined the coordinator/.test(fourth.log))
    }, { scaleUpDelay: "200 millis" })
    expectExactOutput(out)
    // Keyed instance 3 exists only with four members: it ran, on the new one, and produced windows.
    expect(fs.readdirSync(path.join(out, "windows")).filter((f) => f.startsWith("part-00003")).length).toBeGreaterThan(0)
  })

  for (const who of ["a member", "the coordinator's member"] as const) {
    it(`${who} stopped with SIGTERM leaves gracefully: no duplicates even with at-least-once`, async () => {
      const { out } = await threeMembers(async (members) => {
        await new Promise((r) => setTimeout(r, 2000))
        const leaving = who === "a member" ? members.find((m) => m !== coordinatorOf(members))! : coordinatorOf(members)
        const exited = exitOf(leaving)
        leaving.child.kill("SIGTERM")
        expect(await exited).toBe(0)
      }, { export: "appended", processingGuarantee: "at-least-once" })
      expectEachRecordOnce(appendedLines(out))
      expect(committedLines(path.join(out, "windows")).sort()).toEqual(expectedWindows())
    })
  }

  it("runs two jobs side by side on the same members; both recover from a SIGKILLed member exactly", async () => {
    const { out } = await threeMembers(async (members) => {
      await new Promise((r) => setTimeout(r, 500))
      const cluster = clusters.at(-1)!
      const second = await run(Client.submit({
        cluster,
        postgres,
        secret,
        module: jobs,
        export: "streamingSecond",
        processingGuarantee: "exactly-once",
        snapshotInterval: "300 millis"
      }))
      await new Promise((r) => setTimeout(r, 1500))
      members.find((m) => m !== coordinatorOf(members))!.child.kill("SIGKILL")
      await run(Client.awaitJob({ cluster, postgres, name: second }))
    })
    expectExactOutput(out)
    expectExactOutput(path.join(out, "second"))
  })

  it("a member started with --log-format json logs a JSON object a line", async () => {
    const m = await member(newCluster("json"), os.tmpdir(), ["--log-format", "json"])
    await until("the member to join a coordinator", () => /joined the coordinator/.test(m.log))
    const joined = m.log.split("\n").find((line) => line.includes("joined the coordinator"))!
    expect(JSON.parse(joined)).toMatchObject({ level: "INFO", message: expect.stringContaining("joined the coordinator") })
  })

  it("refuses a client, member or runner connection without the cluster secret: nothing is submitted, no one joins", async () => {
    const cluster = newCluster("auth")
    const m = await member(cluster, os.tmpdir())
    await until("the member to join a coordinator", () => /joined the coordinator/.test(m.log))
    const error = await run(Effect.flip(Client.submit({ cluster, postgres, secret: "a wrong secret", module: jobs, export: "streaming", name: "intruder" })))
    expect(error._tag).toBe("LinkAuthError")
    const status = await run(Effect.flip(Client.awaitJob({ cluster, postgres, name: "intruder" })))
    expect(status.message).toMatch(/no such job/)
    // Joining is connecting to the same control plane: refused the same way, and logged there.
    const address = m.log.match(/coordinator \(epoch \d+\) listens on ([\d.]+):(\d+)/)!
    const join = await run(Effect.flip(Effect.scoped(Link.connect({ host: address[1], port: Number(address[2]), secret: "a wrong secret" }))))
    expect(join._tag).toBe("LinkAuthError")
    await until("the refusal to be logged", () => /coordinator: refused a connection/.test(m.log))
    // The engine's runner port proves the secret too: a wrong one is refused, and so is a peer that skips the handshake.
    const runner = await run(Effect.flip(Effect.scoped(Link.connect({ host: "127.0.0.1", port: m.port, secret: "a wrong secret" }))))
    expect(runner._tag).toBe("LinkAuthError")
    const closed = await new Promise<boolean>((resolve) => {
      const socket = net.connect(m.port, "127.0.0.1", () => socket.write(Buffer.from("an rpc request without the handshake, long enough to be a frame".repeat(10))))
      socket.on("close", () => resolve(true))
      socket.on("error", () => {})
      socket.resume()
    })
    expect(closed).toBe(true)
    await until("both refusals to be logged", () => (m.log.match(/runner: refused a connection/g) ?? []).length >= 2)
  })

  it("the coordinator serves the management API wherever it runs: members, REST submit, the job's graph and rising counters from every member, suspend and resume exactly-once, restart, savepoint export and delete, cancel, stop with drain; nothing without the secret", async () => {
    const cluster = newCluster("manage")
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-manage-"))
    const managementPort = await freePort()
    const flags = ["--management-port", String(managementPort)]
    const members = await Promise.all([member(cluster, out, flags), member(cluster, out, flags), member(cluster, out, flags)])
    await until("the management server", () => members.some((m) => m.log.includes(`management server listens on http://127.0.0.1:${managementPort}`)))
    const base = `http://127.0.0.1:${managementPort}/api`
    const api = async (route: string, method = "GET", body?: unknown, token = secret) => {
      const response = await fetch(`${base}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(20_000)
      }).catch((e) => {
        throw new Error(`${method} ${route}: ${e} (${e.cause}):\n${members.map((m) => m.log.slice(-3000)).join("\n---\n")}`)
      })
      return { status: response.status, body: await response.json().catch(() => undefined) as any }
    }
    const poll = async <A>(what: string, read: () => Promise<A>, done: (a: A) => boolean) => {
      for (const deadline = Date.now() + 30_000;;) {
        const a = await read().catch(() => undefined)
        if (a !== undefined && done(a)) return a
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(a)?.slice(0, 2000)}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    await until("the members to join", () => members.every((m) => /joined the coordinator/.test(m.log)))
    // The singleton may move once while the runners register: the calls below go to the one that stays.
    let epoch = 0
    let since = Date.now()
    await until("the coordinator to settle", () => {
      const newest = Math.max(...members.map(epochOf))
      if (newest !== epoch) [epoch, since] = [newest, Date.now()]
      return Date.now() - since > 3000
    })
    // Without the secret nothing is read, nothing submitted.
    expect((await api("/members", "GET", undefined, "a wrong secret")).status).toBe(401)
    expect((await api("/jobs", "POST", { module: jobs, export: "streaming" }, "a wrong secret")).status).toBe(401)
    const listed = await poll("three members", () => api("/members"), (r) => r.status === 200 && r.body.filter((m: any) => m.state === "up").length === 3)
    expect(listed.body.filter((m: any) => m.coordinator).length).toBe(1)

    const streaming = { module: jobs, export: "streamingSlow", name: "managed", guarantee: "exactly-once", snapshotIntervalMs: 300 }
    expect((await api("/jobs", "POST", streaming)).body).toEqual({ id: "managed", name: "managed", status: "running" })
    expect((await api("/jobs", "POST", { ...streaming, export: "appended" })).status).toBe(409)
    expect((await api("/jobs", "POST", { module: "relative.ts" })).body.reason).toMatch(/absolute path or a URL/)
    const detail = await poll("the graph", () => api("/jobs/managed"), (r) => r.body?.graph?.vertices.length > 0)
    expect(detail.body.graph.vertices.some((v: any) => v.source === "generator")).toBe(true)
    // Counters from every member's share: the source's three instances (one per member), rising.
    const sourceIn = (m: any) => m.instances.filter((i: any) => i.source === "generator").reduce((n: number, i: any) => n + i.recordsIn, 0)
    const first = await poll("counters from three source instances", () => api("/jobs/managed/metrics"), (r) =>
      new Set(r.body.instances.filter((i: any) => i.source === "generator").map((i: any) => i.instance)).size === 3 && sourceIn(r.body) > 0)
    await poll("rising counters", () => api("/jobs/managed/metrics"), (r) => sourceIn(r.body) > sourceIn(first.body))

    // Suspended at a terminal snapshot, resumed from it: the output is still each record once.
    expect((await api("/jobs/managed/suspend", "POST")).body.status).toBe("suspended")
    expect((await api("/jobs")).body).toContainEqual({ id: "managed", name: "managed", status: "suspended" })
    const snapshots = (await api("/jobs/managed/snapshots")).body
    expect(snapshots.some((s: any) => s.status === "completed")).toBe(true)
    expect((await api("/jobs/managed/suspend", "POST")).status).toBe(409)
    // Its terminal snapshot kept under a name (a savepoint), deleted again; its failures (none).
    expect((await api("/jobs/managed/snapshots/export", "POST", { name: "managed-savepoint" })).body.status).toBe("suspended")
    expect((await api("/jobs/managed/snapshots/managed-savepoint", "DELETE")).status).toBe(200)
    expect((await api("/jobs/managed/snapshots/managed-savepoint", "DELETE")).body.reason).toMatch(/no snapshot exported as "managed-savepoint"/)
    expect((await api("/jobs/managed/exceptions")).body).toEqual([])
    expect((await api("/jobs/managed/resume", "POST")).body.status).toBe("running")
    await poll("the resumed job to complete", () => api("/jobs/managed"), (r) => r.body.status === "completed")
    expectExactOutput(out)

    // The CLI reads the same server, with the cluster secret.
    const cliJson = (...args: Array<string>) =>
      new Promise<any>((resolve, reject) =>
        execFile(process.execPath, [...runtimeArgs, cli, ...args, "--url", `http://127.0.0.1:${managementPort}`, "--json"], {
          encoding: "utf8",
          env: { ...process.env, TRIBUTARY_SECRET: secret, TRIBUTARY_TOKEN: "" }
        }, (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(JSON.parse(stdout)))))
    expect((await cliJson("members")).length).toBe(3)
    expect(await cliJson("jobs", "list")).toContainEqual({ id: "managed", name: "managed", status: "completed" })

    // An unbounded job: restarted, then its coordinator's member killed: the next coordinator serves it; cancelled.
    expect((await api("/jobs", "POST", { module: jobs, export: "endless", name: "endless", guarantee: "at-least-once", snapshotIntervalMs: 200 })).status).toBe(200)
    await poll("the endless job's counters", () => api("/jobs/endless/metrics"), (r) => sourceIn(r.body) > 0)
    expect((await api("/jobs/endless/restart", "POST")).body.status).toBe("running")
    await poll("counters after the restart", () => api("/jobs/endless/metrics"), (r) => sourceIn(r.body) > 0)
    const old = coordinatorOf(members)
    old.child.kill("SIGKILL")
    await poll("a new coordinator's management server", () => api("/members"), (r) =>
      r.status === 200 && r.body.filter((m: any) => m.state === "up").length === 2)
    await poll("the endless job running again", () => api("/jobs/endless/metrics"), (r) => sourceIn(r.body) > 0)
    expect((await api("/jobs/endless/cancel", "POST")).body.status).toBe("cancelled")
    const cancelled = await run(Effect.flip(Client.awaitJob({ cluster, postgres, name: "endless" })))
    expect(cancelled.message).toMatch(/cancelled/)

    // Stop with drain: the sources stop, the final watermark closes the hour's window, the sink commits it: once, counting every record read.
    expect((await api("/jobs", "POST", { module: jobs, export: "hourly", name: "hourly", guarantee: "exactly-once", snapshotIntervalMs: 200 })).status).toBe(200)
    await poll("the hourly job's counters", () => api("/jobs/hourly/metrics"), (r) => sourceIn(r.body) > 0)
    expect((await api("/jobs/hourly/stop?drain=true", "POST")).body.status).toBe("completed")
    const read = sourceIn((await api("/jobs/hourly/metrics")).body)
    expect(read).toBeGreaterThan(0)
    expect(committedLines(path.join(out, "hourly"))).toEqual([`0 ${read}`])
  }, 120_000)
})
