#!/usr/bin/env node
// The `tributary` command: the built CLI (see src/cli.ts).
import "../dist/cli.js"
