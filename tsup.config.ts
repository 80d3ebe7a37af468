import * as fs from "node:fs"
import { defineConfig } from "tsup"

// Every workspace package with a `src/index.ts` gets one ESM build with type declarations.
const packages = ["core", "cluster", ...fs.readdirSync("plugins").map((p) => `plugins/${p}`)]
  .filter((dir) => fs.existsSync(`${dir}/src/index.ts`))

export default defineConfig(packages.map((dir) => ({
  entry: { index: `${dir}/src/index.ts` },
  outDir: `${dir}/dist`,
  format: ["esm" as const],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "es2023",
  external: [/^effect/, /^@effect\//, /^@tributary\//]
})))
