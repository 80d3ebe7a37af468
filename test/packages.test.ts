/**
 * What a user installs: every workspace package built, packed and installed
 * from its tarball into a project outside this repository, whose jobs then run
 * from the JavaScript the packages ship, on Node, Bun and Deno; and the
 * `tributary` command, from the sources in this repository and from the build
 * where installed.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "..")
const bin = (name: string) => path.join(root, "node_modules", ".bin", name)

interface Manifest {
  readonly name: string
  readonly license?: string
  readonly repository?: unknown
  readonly exports: Record<string, unknown>
  readonly engines?: { readonly node?: string }
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
}

const readManifest = (dir: string): Manifest => JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))

/** The workspace packages ("plugins/*" and the like expanded), so a package added later is tested too. */
const workspaces = (readManifest(root) as Manifest & { workspaces: ReadonlyArray<string> }).workspaces.flatMap((pattern) =>
  pattern.endsWith("/*")
    ? fs.readdirSync(path.join(root, pattern.slice(0, -2))).map((dir) => path.join(pattern.slice(0, -2), dir))
    : [pattern]
).filter((dir) => fs.existsSync(path.join(root, dir, "package.json"))).map((dir) => readManifest(path.join(root, dir)).name)

interface RunOptions {
  readonly cwd: string
  readonly env?: Record<string, string> | undefined
}

const run = (command: string, args: ReadonlyArray<string>, options: RunOptions) =>
  spawnSync(command, args, { ...options, env: { ...process.env, ...options.env }, encoding: "utf8", timeout: 120_000 })

/** Runs and expects success: what it printed. */
const output = (command: string, args: ReadonlyArray<string>, options: RunOptions) => {
  const result = run(command, args, options)
  expect(result.status, `${command} ${args.join(" ")}: ${result.stdout}${result.stderr}`).toBe(0)
  return result.stdout
}

/** `tributary member` without its flags: what is missing and the verb's help, exit code 2. */
const expectUsage = (result: ReturnType<typeof run>) => {
  expect(result.status, result.stderr).toBe(2)
  expect(result.stderr).toContain("Missing required flag: --cluster")
  expect(result.stdout).toContain("tributary member [flags]")
}

// Building, packing and installing do not depend on the runtime running the suite: once, from Node's run.
const onNode = !("Bun" in globalThis || "Deno" in globalThis)

describe.skipIf(!onNode)("the tributary command in this repository", () => {
  it("runs from the sources, without a build", () => {
    expectUsage(run(bin("node"), [bin("tributary"), "member"], { cwd: root, env: { TRIBUTARY_SECRET: "s" } }))
  })
})

const apps: Record<string, string> = {
  "embedded.js": `
    import { Effect } from "effect"
    import { Aggregate, Pipeline, Sinks, Sources, Stage, Tributary } from "@tributary/core"
    const out = Sinks.collect()
    await Effect.runPromise(Tributary.run(Pipeline.from(Sources.fromIterable([1, 2, 3])).pipe(
      Stage.aggregate(Aggregate.summing((x) => x)), Stage.writeTo(out))))
    console.log(out.items[0])`,
  // The sums of 0..9999 by remainder of 3, over this process and a copy of it.
  "workers.js": `
    import { Effect } from "effect"
    import { Aggregate, Pipeline, Platform, Sinks, Sources, Stage } from "@tributary/core"
    import { Workers } from "@tributary/cluster"
    const sums = Sinks.collect()
    const pipeline = Pipeline.from(Sources.generator({ make: (n) => n, count: 10_000 })).pipe(
      Stage.groupingKey((n) => n % 3), Stage.aggregate(Aggregate.summing((n) => n)), Stage.writeTo(sums))
    await Effect.runPromise(Workers.run(pipeline, { workers: 2 }).pipe(Effect.provide(Platform.layer)))
    console.log(sums.items.map((r) => \`\${r.key} \${r.value}\`).sort().join("\\n"))`,
  // The same sums over two member processes, each writing its part to OUT_DIR.
  "cluster.js": `
    import { Effect } from "effect"
    import * as fs from "node:fs"
    import { Aggregate, Pipeline, Sinks, Sources, Stage } from "@tributary/core"
    import { LocalCluster } from "@tributary/cluster"
    const out = process.env.OUT_DIR ?? "out"
    export const sums = Pipeline.from(Sources.generator({ make: (n) => n, count: 10_000 })).pipe(
      Stage.groupingKey((n) => n % 3), Stage.aggregate(Aggregate.summing((n) => n)),
      Stage.map((r) => \`\${r.key} \${r.value}\`), Stage.writeTo(Sinks.directory(out)))
    if (process.env.TRIBUTARY_MEMBER === undefined) {
      await Effect.runPromise(LocalCluster.run({ module: import.meta.url, export: "sums", members: 2 }))
      const parts = fs.readdirSync(out).filter((f) => f.startsWith("part-"))
      console.log(parts.flatMap((p) => fs.readFileSync(\`\${out}/\${p}\`, "utf8").trim().split("\\n")).sort().join("\\n"))
    }`
}

// The database plugins against the real servers: 100 rows from PostgreSQL (4 key-range splits) upserted into
// MariaDB, read back from there (3 splits) and upserted into PostgreSQL again; tables named per runtime.
apps["databases.js"] = `
    import { Effect } from "effect"
    import postgres from "postgres"
    import * as mysql from "mysql2/promise"
    import { Pipeline, Stage, Tributary } from "@tributary/core"
    import { PostgresClient, PostgresSink, PostgresSource } from "@tributary/postgres"
    import { MysqlClient, MysqlSink, MysqlSource } from "@tributary/mysql"
    const t = "pkg_" + process.env.RUNTIME
    const pg = postgres(process.env.PGURL ?? "postgres://postgres@127.0.0.1:5432/test", { onnotice: () => {} })
    const my = await mysql.createConnection({ host: "127.0.0.1", user: "root", database: "test" })
    await pg.unsafe(\`drop table if exists \${t}_src, \${t}_back\`)
    await pg.unsafe(\`create table \${t}_src (id int primary key, v int not null)\`)
    await pg.unsafe(\`create table \${t}_back (id int primary key, v int not null)\`)
    await pg.unsafe(\`insert into \${t}_src select i, i * 2 from generate_series(0, 99) i\`)
    await my.query(\`DROP TABLE IF EXISTS \${t}_mid\`)
    await my.query(\`CREATE TABLE \${t}_mid (id INT PRIMARY KEY, v INT NOT NULL)\`)
    const there = Effect.flatMap(MysqlSink.upsert({ table: t + "_mid", columns: ["id", "v"], key: ["id"] }), (sink) =>
      Tributary.run(Pipeline.from(PostgresSource.query({ table: t + "_src", splitColumn: "id", splits: 4 })).pipe(
        Stage.map((r) => ({ id: r.id, v: r.v })), Stage.writeTo(sink)), { parallelism: 2, quiet: true }))
    const back = Effect.flatMap(MysqlSource.query({ table: t + "_mid", key: "id", splits: 3 }), (source) =>
      Tributary.run(Pipeline.from(source).pipe(Stage.map((r) => ({ id: Number(r.id), v: Number(r.v) + 1 })),
        Stage.writeTo(PostgresSink.upsert({ table: t + "_back", key: "id" }))), { parallelism: 2, quiet: true }))
    await Effect.runPromise(Effect.andThen(there, back).pipe(Effect.provide([PostgresClient.layer(), MysqlClient.layer()])))
    const [{ n, sum }] = await pg.unsafe(\`select count(*)::int as n, sum(v)::int as sum from \${t}_back\`)
    console.log(n, sum)
    await pg.unsafe(\`drop table \${t}_src, \${t}_back\`)
    await my.query(\`DROP TABLE \${t}_mid\`)
    await pg.end()
    await my.end()`

// The Kafka plugin against the test broker this process runs: 100 records into a topic exactly-once (in
// transactions), read back to its end with read_committed.
apps["kafka.js"] = `
    import { Effect } from "effect"
    import { Pipeline, Sinks, Sources, Stage, Tributary } from "@tributary/core"
    import { KafkaClient, KafkaSerde, KafkaSink, KafkaSource } from "@tributary/kafka"
    const topic = "pkg-" + process.env.RUNTIME + "-" + Date.now()
    const read = Sinks.collect()
    const program = Effect.gen(function*() {
      // An empty read creates the topic (3 partitions).
      yield* Tributary.run(Pipeline.from(KafkaSource.source({ topics: [topic], bounded: true, create: { partitions: 3 } })).pipe(Stage.writeTo(Sinks.collect())), { quiet: true })
      yield* Tributary.run(Pipeline.from(Sources.generator({ make: (n) => n, count: 100 })).pipe(
        Stage.writeTo(KafkaSink.sink({ topic, guarantee: "exactly-once", snapshotInterval: "100 millis", message: (n) => ({ key: String(n % 7), value: String(n) }) }))),
        { processingGuarantee: "exactly-once", snapshotInterval: "100 millis", quiet: true })
      yield* Tributary.run(Pipeline.from(KafkaSource.source({ topics: [topic], value: KafkaSerde.string, bounded: true, isolation: "read_committed" })).pipe(
        Stage.map((r) => Number(r.value)), Stage.writeTo(read)), { quiet: true })
    })
    await Effect.runPromise(program.pipe(Effect.provide(KafkaClient.layer({ brokers: [process.env.KAFKA ?? "127.0.0.1:9092"] }))))
    console.log(read.items.length, read.items.reduce((a, b) => a + b, 0))`

const sums = [0, 1, 2].map((r) => `${r} ${Array.from({ length: 10_000 }, (_, n) => n).filter((n) => n % 3 === r).reduce((a, b) => a + b, 0)}`).join("\n")

const runtimes: Record<string, (script: string) => readonly [command: string, args: ReadonlyArray<string>]> = {
  node: (script) => [bin("node"), [script]],
  bun: (script) => [bin("bun"), [script]],
  deno: (script) => [bin("deno"), ["run", "-A", script]]
}

describe.skipIf(!onNode)("the packed packages, installed in a project of their own", () => {
  let project = ""
  const installed = (name: string) => path.join(project, "node_modules", name)

  beforeAll(() => {
    project = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-packages-"))
    output(bin("tsup"), [], { cwd: root })
    const packed: Array<{ name: string; filename: string }> = JSON.parse(
      output("npm", ["pack", "--workspaces", "--json", "--pack-destination", project], { cwd: root })
    )
    expect(packed.map((p) => p.name).sort()).toEqual([...workspaces].sort())
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({
      name: "consumer",
      private: true,
      type: "module",
      dependencies: Object.fromEntries(packed.map((p) => [p.name, `file:./${p.filename}`]))
    }))
    output("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], { cwd: project })
    for (const [file, code] of Object.entries(apps)) fs.writeFileSync(path.join(project, file), code)
  }, 300_000)
  // The test broker in a process of its own: the apps run synchronously, which would block one in this process.
  let kafka: ChildProcess | undefined
  let kafkaBrokers = ""
  beforeAll(async () => {
    const broker = spawn(bin("node"), [path.join(root, "test", "kafka-broker", "main.ts")], { stdio: ["ignore", "pipe", "inherit"] })
    kafka = broker
    kafkaBrokers = await new Promise<string>((resolve, reject) => {
      broker.stdout!.on("data", (chunk: Buffer) => {
        const port = /PORT (\d+)/.exec(chunk.toString())?.[1]
        if (port) resolve(`127.0.0.1:${port}`)
      })
      broker.once("exit", (code) => reject(new Error(`the test broker exited with ${code}`)))
    })
  })
  afterAll(() => {
    fs.rmSync(project, { recursive: true, force: true })
    kafka?.kill("SIGKILL")
  })

  describe.each(Object.keys(runtimes))("on %s", (runtime) => {
    const runOn = (script: string, env?: Record<string, string>) => {
      const [command, args] = runtimes[runtime]!(script)
      return output(command, args, { cwd: project, env }).trim()
    }

    it("an embedded job", () => {
      expect(runOn("embedded.js")).toBe("6")
    })

    it("Workers.run", () => {
      expect(runOn("workers.js")).toBe(sums)
    })

    it("LocalCluster.run", () => {
      expect(runOn("cluster.js", { OUT_DIR: fs.mkdtempSync(path.join(project, "out-")) })).toBe(sums)
    })

    it("the Kafka plugin against the test broker, exactly-once", () => {
      expect(runOn("kafka.js", { RUNTIME: runtime, KAFKA: kafkaBrokers })).toBe("100 4950")
    })

    it("the PostgreSQL and MySQL plugins against the real servers", () => {
      // 100 rows of v = 2 id, plus one each on the way back.
      expect(runOn("databases.js", { RUNTIME: runtime })).toBe(`100 ${Array.from({ length: 100 }, (_, i) => 2 * i + 1).reduce((a, b) => a + b, 0)}`)
    })
  })

  it("every entry point type-checks in a project that checks its libraries (skipLibCheck: false), and so do the jobs", () => {
    const entries = workspaces.flatMap((name) => Object.keys(readManifest(installed(name)).exports).map((subpath) => path.posix.join(name, subpath)))
    fs.writeFileSync(path.join(project, "entries.ts"), entries.map((entry, i) => `export * as entry${i} from "${entry}"\n`).join(""))
    fs.writeFileSync(path.join(project, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        target: "es2023",
        module: "nodenext",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        allowJs: true,
        checkJs: true,
        typeRoots: [path.join(root, "node_modules", "@types")],
        types: ["node"]
      },
      include: ["*.ts", ...Object.keys(apps)]
    }))
    output(bin("tsc"), ["-p", "tsconfig.json"], { cwd: project })
  })

  it("CommonJS can require every package", () => {
    const script = workspaces.map((name) => `console.log(Object.keys(require(${JSON.stringify(name)})).length > 0)`).join("\n")
    fs.writeFileSync(path.join(project, "require.cjs"), script)
    expect(output(bin("node"), ["require.cjs"], { cwd: project }).trim().split("\n")).toEqual(workspaces.map(() => "true"))
  })

  it("each package ships its README, license and repository, and imports its dependencies instead of bundling them", () => {
    for (const name of workspaces) {
      const manifest = readManifest(installed(name))
      expect(manifest.license, name).toBe("MIT")
      expect(manifest.repository, name).toBeDefined()
      expect(fs.existsSync(path.join(installed(name), "README.md")), name).toBe(true)
      const scripts = fs.readdirSync(installed(name), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js"))
      // esbuild marks each module it bundles with a `// node_modules/<package>/…` comment.
      for (const file of scripts) expect(fs.readFileSync(path.join(installed(name), file), "utf8"), `${name}/${file}`).not.toMatch(/^\/\/ .*node_modules\//m)
    }
  })

  it("each package asks for a Node version that its dependencies accept", () => {
    const lowest = (range: string | undefined) => range?.match(/^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/)?.slice(1).map((n) => Number(n ?? 0))
    const atLeast = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!
    for (const name of workspaces) {
      const manifest = readManifest(installed(name))
      const own = lowest(manifest.engines?.node)
      expect(own, `${name}: engines.node`).toBeDefined()
      for (const dependency of Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })) {
        if (!fs.existsSync(installed(dependency))) continue
        const needs = lowest(readManifest(installed(dependency)).engines?.node)
        if (needs) expect(atLeast(own!, needs), `${name} (node ${manifest.engines!.node}) on ${dependency} (node ${readManifest(installed(dependency)).engines!.node})`).toBeGreaterThanOrEqual(0)
      }
    }
  })

  it("one machine does without PostgreSQL's packages: the cluster runs without @effect/sql-pg, whose absence the command names", () => {
    expect(fs.existsSync(installed("@effect/sql-pg"))).toBe(false)
    const tributary = path.join(project, "node_modules", ".bin", "tributary")
    expectUsage(run(bin("node"), [tributary, "member"], { cwd: project, env: { TRIBUTARY_SECRET: "s" } }))
    const member = run(bin("node"), [tributary, "member", "--cluster", "c", "--postgres", "postgres://127.0.0.1:1/x", "--port", "0"], {
      cwd: project,
      env: { TRIBUTARY_SECRET: "s" }
    })
    expect(member.status).toBe(1)
    expect(member.stderr).toMatch(/needs PostgreSQL's packages: npm install @effect\/sql-pg @tributary\/postgres/)
  })
})
