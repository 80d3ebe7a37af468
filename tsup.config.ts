import { defineConfig } from "tsup"

// One ESM build with type declarations per workspace package.
const pkg = (dir: string) => ({
  entry: { index: `${dir}/src/index.ts` },
  outDir: `${dir}/dist`,
  format: ["esm" as const],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "es2023",
  external: [/^effect/, /^@effect\//, /^@tributary\//]
})

export default defineConfig([pkg("core"), pkg("cluster")])
