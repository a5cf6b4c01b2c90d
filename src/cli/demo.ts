/**
 * `anyserve demo` (what `npm start` runs): the API server plus the example replicas of
 * examples/mvp_demo, the way the seed's section 7 starts them, with the URLs and a first curl.
 * Ctrl-C stops every process it started.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { spawnAnyserve, stopChild, type ChildInfo } from "./children.js";
import { intOption, onShutdown } from "./common.js";

const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DEMO_DIR = path.join(PACKAGE_ROOT, "examples", "mvp_demo");

export const DEMO_REPLICAS = [
  { id: "replica-a", app: "chat_app.ts:app" },
  { id: "replica-b", app: "embed_app.ts:app" },
  { id: "replica-c", app: "heavy_app.ts:app" },
  { id: "replica-d", app: "stream_app.ts:app" },
] as const;

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("run the demo: API server + chat, embed, heavy and stream replicas (examples/mvp_demo)")
    .option("--port <port>", "API server REST port (0 = any free port)", intOption("--port", 0, 65535), 8080)
    .option("--grpc-port <port>", "API server gRPC port (0 = any free port)", intOption("--grpc-port", 0, 65535), 8081)
    .option("--quiet", "do not echo the processes' logs")
    .action(async (o: { port: number; grpcPort: number; quiet?: boolean }) => {
      const children: ChildInfo[] = [];
      const stopAll = async (): Promise<void> => {
        await Promise.all(children.map((c) => stopChild(c.process)));
      };
      onShutdown(stopAll);
      const echo = !o.quiet;
      try {
        const api = await spawnAnyserve("api-server", ["api-server", "--port", String(o.port), "--grpc-port", String(o.grpcPort)], { echo });
        children.push(api);
        const url = String(api.ready.url);
        const started = await Promise.all(
          DEMO_REPLICAS.map((r) =>
            spawnAnyserve(r.id, ["start", "--app", path.join(DEMO_DIR, r.app), "--port", "0", "--api-server", url, "--replica-id", r.id, "--heartbeat-interval", "2"], { echo }),
          ),
        );
        children.push(...started);
        printWelcome(url, String(api.ready.grpc), started);
      } catch (err) {
        await stopAll();
        throw err;
      }
    });
}

function printWelcome(url: string, grpc: string, replicas: ChildInfo[]): void {
  const lines = [
    "",
    `anyserve demo is up: API server ${url} (gRPC ${grpc})`,
    ...replicas.map((r) => `  ${r.name}: ${String(r.ready.http)}  gRPC ${String(r.ready.grpc)}`),
    "",
    "Try:",
    `  curl -s ${url}/infer -H 'X-Capability-Type: chat' -H 'Content-Type: application/json' \\`,
    `    -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["hello"]}]}'`,
    `  curl -s ${url}/v2/models/llama-70b/infer -H 'Content-Type: application/json' \\`,
    `    -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["hello"]}]}'`,
    `  curl -sN ${url}/infer/stream -H 'X-Capability-Type: stream' -H 'Content-Type: application/json' \\`,
    `    -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["one two three"]}]}'`,
    `  curl -s ${url}/registry`,
    "",
    "Ctrl-C stops everything.",
    "",
  ];
  process.stdout.write(lines.join("\n"));
  process.stdout.write(`ANYSERVE_READY ${JSON.stringify({ role: "demo", url, grpc })}\n`);
}
