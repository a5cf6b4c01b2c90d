// `node --import ./load-recorder.mjs …`: records what the process loads into $ANYSERVE_LOAD_RECORD —
// every ESM module as it loads (module hooks), and at exit every CommonJS file (require.cache,
// which also holds the CommonJS packages an ESM module imported).
import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";

const out = process.env.ANYSERVE_LOAD_RECORD;
if (out) {
  register("./load-recorder-hooks.mjs", import.meta.url, { data: { out } });
  const cache = createRequire(import.meta.url).cache;
  process.on("exit", () =>
    appendFileSync(
      out,
      Object.keys(cache)
        .map((f) => `${pathToFileURL(f).href}\n`)
        .join(""),
    ),
  );
}
