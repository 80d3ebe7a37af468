import * as fs from "node:fs"
import * as path from "node:path"
import { defineConfig } from "tsup"
import ts from "typescript"

// Every workspace package with a `src/index.ts` gets one ESM build with type declarations.
const packages = ["core", "cluster", ...fs.readdirSync("plugins").map((p) => `plugins/${p}`)]
  .filter((dir) => fs.existsSync(`${dir}/src/index.ts`))

// A member process of a local cluster runs a script of its own, and so does the `tributary` command.
const scripts: Record<string, Record<string, string>> = {
  cluster: { member: "cluster/src/local/member.ts", cli: "cluster/src/cli.ts" }
}

// Static files a module reads beside itself (the management dashboard) go beside the bundle.
const assets: Record<string, Record<string, string>> = {
  core: { "core/src/management/dashboard": "dashboard" }
}

interface Manifest {
  readonly exports: Record<string, { readonly source: string }>
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
}

/** Each entry point of a package's `exports` ("./postgres" → `postgres`, "." → `index`) and its source. */
const entryPoints = (dir: string, manifest: Manifest) =>
  Object.fromEntries(Object.entries(manifest.exports).map(([subpath, { source }]) => [
    subpath === "." ? "index" : subpath.slice(2),
    path.join(dir, source)
  ]))

/**
 * Declarations module by module, as tsc writes them. Bundled (tsup's `dts`), a namespace's
 * interfaces become aliases that keep their variance annotations, which TypeScript rejects
 * (TS2637) in a project that checks its libraries.
 */
const declarations = (dir: string, entries: ReadonlyArray<string>) => async () => {
  const { options } = ts.parseJsonConfigFileContent(ts.readConfigFile("tsconfig.json", ts.sys.readFile).config, ts.sys, ".")
  const sources = `${path.resolve(dir, "src")}${path.sep}`
  const program = ts.createProgram(entries, { ...options, noEmit: false, declaration: true, emitDeclarationOnly: true })
  // The program holds the sources of the workspace packages this one imports: only its own go to its `dist`.
  const { diagnostics } = program.emit(undefined, (file, text) => {
    if (!path.resolve(file).startsWith(sources)) return
    const target = path.join(dir, "dist", path.relative(sources, file))
    fs.mkdirSync(path.dirname(target), { recursive: true })
    fs.writeFileSync(target, text)
  }, undefined, true)
  if (diagnostics.length > 0) throw new Error(ts.formatDiagnostics(diagnostics, ts.createCompilerHost(options)))
}

export default defineConfig(packages.map((dir) => {
  const manifest: Manifest = JSON.parse(fs.readFileSync(`${dir}/package.json`, "utf8"))
  const entries = entryPoints(dir, manifest)
  // What the package depends on is installed beside it, not bundled into it.
  const dependencies = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })
  return {
    entry: { ...entries, ...scripts[dir] },
    outDir: `${dir}/dist`,
    format: ["esm" as const],
    clean: true,
    sourcemap: true,
    target: "es2023",
    external: dependencies.map((name) => new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(/|$)`)),
    onSuccess: async () => {
      await declarations(dir, Object.values(entries))()
      for (const [from, to] of Object.entries(assets[dir] ?? {})) fs.cpSync(from, path.join(dir, "dist", to), { recursive: true })
    }
  }
}))
