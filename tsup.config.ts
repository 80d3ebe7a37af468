import * as fs from "node:fs"
import { defineConfig } from "tsup"

// Every workspace package with a `src/index.ts` gets one ESM build with type declarations.
const packages = ["core", "cluster", ...fs.readdirSync("plugins").map((p) => `plugins/${p}`)]
  .filter((dir) => fs.existsSync(`${dir}/src/index.ts`))

// A member process of a local cluster runs a script of its own, and so does the `tributary` command.
const extraEntries: Record<string, Record<string, string>> = {
  cluster: { member: "cluster/src/local/member.ts", cli: "cluster/src/cli.ts" }
}

export default defineConfig(packages.map((dir) => ({
  entry: { index: `${dir}/src/index.ts`, ...extraEntries[dir] },
  outDir: `${dir}/dist`,
  format: ["esm" as const],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "es2023",
  external: [/^effect/, /^@effect\//, /^@tributary\//]
})))
