/**
 * `anyserve check-app FILE[:export]` (not listed in --help): loads an app the way a replica would
 * and prints one JSON line — `{ok: true, handlers}` or `{ok: false, kind, message}`. `up`,
 * `apply`, `validate` and a repository's load run it in a child process for each app before anything starts, so a
 * missing file, a module that throws or a misspelt export is reported once, with the path and what
 * exists, instead of as a crash loop (a child, so the app's import-time code cannot touch them).
 * A model (`onnx:`) is also loaded by its runtime: a session is created and released.
 */
import type { Command } from "commander";
import type { CheckedHandler } from "../deploy/check-apps.js";
import { checkServable } from "../models/load.js";
import { AppLoadError } from "../sdk/load-app.js";

export function registerCheckAppCommand(program: Command): void {
  program
    .command("check-app", { hidden: true })
    .argument("<app>", "FILE[:export]")
    .option("--service <name>", "the service a class export is served as")
    .option("--python <path>", "the interpreter of a .py app")
    .action(async (spec: string, o: { service?: string; python?: string }) => {
      try {
        const app = await checkServable(spec, { ...(o.service ? { service: o.service } : {}), python: o.python });
        const handlers: CheckedHandler[] = app.handlers.map((h) => ({
          capability: h.capability,
          stream: h.isStream,
          ...(h.options.example ? { example: h.options.example } : {}),
        }));
        process.stdout.write(`${JSON.stringify({ ok: true, handlers })}\n`);
      } catch (err) {
        const kind = err instanceof AppLoadError ? err.kind : "import_failed";
        process.stdout.write(`${JSON.stringify({ ok: false, kind, message: (err as Error).message })}\n`);
      }
      // The app may hold the event loop open (timers, sockets): the answer is out, so leave.
      process.exit(0);
    });
}
