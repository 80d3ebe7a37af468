#!/usr/bin/env node
// The `tributary` command (see src/cli.ts). Installed, it runs the build; in this repository,
// where `npm install` builds nothing, the sources, with the workspace packages resolved to theirs.
import { existsSync } from "node:fs"
import { registerHooks } from "node:module"

const sources = new URL("../src/cli.ts", import.meta.url)
if (existsSync(sources)) {
  registerHooks({ resolve: (specifier, context, next) => next(specifier, { ...context, conditions: ["source", ...context.conditions] }) })
  await import(sources.href)
} else {
  await import("../dist/cli.js")
}
