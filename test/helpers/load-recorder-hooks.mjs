// Module hooks that append the URL of every module loaded through the ESM loader to a file
// (`data.out`). Registered by load-recorder.mjs (processes) or a worker thread's bootstrap.
import { appendFileSync } from "node:fs";

let out;

export function initialize(data) {
  out = data.out;
}

export async function load(url, context, next) {
  appendFileSync(out, `${url}\n`);
  return next(url, context);
}
