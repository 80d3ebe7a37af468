/** The `tributary` command line on effect's `cli` module: help, parse errors, and the `jobs` verbs against a management server. */
import { execFile, spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runtimeArgs } from "./cluster-helpers.ts"
import { TOKEN, withManagedJob } from "./management-helpers.ts"

const cli = path.join(import.meta.dirname, "..", "cluster", "src", "cli.ts")
const { TRIBUTARY_SECRET: _, TRIBUTARY_TOKEN: __, ...withoutSecret } = process.env
const tributary = (...args: ReadonlyArray<string>) =>
  spawnSync(process.execPath, [...runtimeArgs, cli, ...args], { encoding: "utf8", env: withoutSecret })

/** Runs the command without blocking this process (which may be serving the management API it calls). */
const tributaryAsync = (env: Record<string, string>, ...args: ReadonlyArray<string>) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [...runtimeArgs, cli, ...args], { encoding: "utf8", env: { ...withoutSecret, ...env } }, (error, stdout, stderr) =>
      resolve({ status: error ? (error.code as number) : 0, stdout, stderr }))
  })

describe("tributary command line", () => {
  it("prints help for the command and each verb, and shell completions, without a secret", () => {
    const help = tributary("--help")
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/USAGE\n {2}tributary <subcommand>/)
    for (const verb of ["member", "submit", "jobs", "snapshots"]) expect(help.stdout).toMatch(new RegExp(`\\n {2}${verb} `))
    const member = tributary("member", "-h")
    expect(member.status).toBe(0)
    expect(member.stdout).toContain("--cluster string")
    expect(tributary("jobs", "--help").stdout).toMatch(/list[\s\S]*suspend[\s\S]*stop/)
    expect(tributary("--completions", "bash").stdout).toContain("tributary")
  }, 60_000)

  it("names what is wrong with a command line before asking for the secret (exit code 2)", () => {
    const unknown = tributary("start")
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toContain('Unknown subcommand "start" for "tributary"')
    const missing = tributary("member")
    expect(missing.status).toBe(2)
    expect(missing.stderr).toContain("Missing required flag: --cluster")
    const secret = tributary("member", "--cluster", "c", "--postgres", "p", "--port", "1")
    expect(secret.status).toBe(2)
    expect(secret.stderr).toBe("set the cluster secret in TRIBUTARY_SECRET\n")
  }, 60_000)

  it("checks the restart policy and scale-up delay of submit before connecting", () => {
    const submit = (...flags: ReadonlyArray<string>) =>
      spawnSync(process.execPath, [...runtimeArgs, cli, "submit", "job.ts", "--cluster", "c", "--postgres", "postgres://nowhere.invalid/db", ...flags], {
        encoding: "utf8",
        env: { ...withoutSecret, TRIBUTARY_SECRET: "a secret" }
      })
    expect(submit("--failure-interval", "0").stderr).toMatch(/^tributary: invalid pipeline: a restart policy's interval must be longer than 0, got 0\n/)
    expect(submit("--max-failures", "1.5").stderr).toContain('Invalid value for flag --max-failures: "1.5". Expected an integer')
    expect(submit("--scale-up-delay", "soon").stderr).toContain('Invalid value for flag --scale-up-delay: "soon"')
    expect(submit("--guarantee", "twice").status).toBe(2)
  }, 60_000)
})

describe.skipIf("Bun" in globalThis || "Deno" in globalThis)("tributary jobs", () => {
  it("list, status, snapshots export and list, suspend, resume, stop against a management server, with --json; the token from TRIBUTARY_TOKEN", async () => {
    await withManagedJob(async (base, id) => {
      const env = { TRIBUTARY_TOKEN: TOKEN }
      const runIn = async (group: string, ...args: ReadonlyArray<string>) => {
        const answer = await tributaryAsync(env, group, ...args, "--url", base, "--json")
        expect(answer.stderr).toBe("")
        expect(answer.status).toBe(0)
        return JSON.parse(answer.stdout)
      }
      const run = (...args: ReadonlyArray<string>) => runIn("jobs", ...args)
      expect(await run("list")).toEqual([{ id, name: "managed", status: "running" }])
      const status = await run("status", id)
      expect(status.graph.vertices.length).toBeGreaterThan(1)
      // A snapshot exported under a name shows in the job's history.
      expect(await runIn("snapshots", "export", id, "cli-savepoint")).toMatchObject({ id, status: "running" })
      const history = await runIn("snapshots", "list", id)
      // The newest entry may be a periodic snapshot still in progress.
      const completed = history.filter((snapshot: { status: string }) => snapshot.status === "completed")
      expect(completed.length).toBeGreaterThan(0)
      expect(completed.at(-1).bytes).toBeGreaterThanOrEqual(0)
      expect(await runIn("snapshots", "delete", id, "cli-savepoint")).toMatchObject({ id, status: "running" })
      const again = await tributaryAsync(env, "snapshots", "delete", id, "cli-savepoint", "--url", base)
      expect(again.stderr).toBe('tributary: job "managed": no snapshot exported as "cli-savepoint"\n')
      expect(await run("suspend", id)).toMatchObject({ status: "suspended" })
      expect(await run("resume", id)).toMatchObject({ status: "running" })
      expect(await run("stop", id)).toMatchObject({ status: "completed" })
      // Without --json: one tab-separated line per job.
      expect((await tributaryAsync(env, "jobs", "list", "--url", base)).stdout).toBe(`${id}\tmanaged\tcompleted\n`)
      const refused = await tributaryAsync({ TRIBUTARY_TOKEN: "wrong" }, "jobs", "list", "--url", base)
      expect(refused.status).toBe(1)
      expect(refused.stderr).toBe(`tributary: the management server at ${base} refused the token\n`)
      const unknown = await tributaryAsync(env, "jobs", "cancel", "job-none", "--url", base)
      expect(unknown.stderr).toBe('tributary: no job "job-none"\n')
      expect((await tributaryAsync({}, "jobs", "list", "--url", base)).stderr).toBe("set the management token in TRIBUTARY_TOKEN (or a cluster's secret in TRIBUTARY_SECRET)\n")
    })
  }, 60_000)
})
