#!/usr/bin/env -S node --no-memory-reducer --initial-old-space-size=64 --min-semi-space-size=8
// Thin launcher: the CLI is compiled to dist/ by `npm install` (the `prepare` script). The node
// flags on the first line are src/util/node-flags.ts's SERVING_NODE_FLAGS (why: see there).
import "../dist/cli/main.js";
