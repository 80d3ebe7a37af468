/** The `tributary` command line, without a cluster: what it answers before it needs one. */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runtimeArgs } from "./cluster-helpers.ts"

const cli = path.join(import.meta.dirname, "..", "cluster", "src", "cli.ts")
const { TRIBUTARY_SECRET: _, ...withoutSecret } = process.env
const tributary = (...args: ReadonlyArray<string>) =>
  spawnSync(process.execPath, [...runtimeArgs, cli, ...args], { encoding: "utf8", env: withoutSecret })

describe("tributary command line", () => {
  it("prints its usage for help, without a secret", () => {
    for (const args of [["help"], ["--help"], ["member", "-h"]]) {
      const answer = tributary(...args)
      expect(answer.status, args.join(" ")).toBe(0)
      expect(answer.stdout).toMatch(/^usage:\n {2}tributary help\n {2}tributary member --cluster <name>/)
    }
  }, 60_000)

  it("names what is wrong with a command line before asking for the secret", () => {
    const unknown = tributary("start")
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/^unknown command "start"\nusage:/)
    expect(tributary("member").stderr).toMatch(/^--cluster is required\n/)
    expect(tributary("member", "--cluster", "c", "--postgres", "p").stderr).toMatch(/^set the cluster secret in TRIBUTARY_SECRET\n/)
  }, 60_000)

  it("checks the restart policy and scale-up delay of submit before connecting", () => {
    const submit = (...flags: ReadonlyArray<string>) =>
      spawnSync(process.execPath, [...runtimeArgs, cli, "submit", "job.ts", "--cluster", "c", "--postgres", "postgres://nowhere.invalid/db", ...flags], {
        encoding: "utf8",
        env: { ...withoutSecret, TRIBUTARY_SECRET: "a secret" }
      })
    expect(submit("--failure-interval", "0").stderr).toMatch(/^tributary: invalid pipeline: a restart policy's interval must be longer than 0, got 0\n/)
    expect(submit("--max-failures", "1.5").stderr).toMatch(/^--max-failures must be a whole number, got "1.5"\n/)
    expect(submit("--scale-up-delay", "soon").stderr).toMatch(/^--scale-up-delay must be a whole number, got "soon"\n/)
  }, 60_000)
})
