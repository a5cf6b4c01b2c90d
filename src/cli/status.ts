/**
 * `anyserve status`: the management API's view as a terminal table — services (replicas, health,
 * rps, latency, errors, queue) and their replicas — or as JSON (`--json`), refreshed in place with
 * `--watch`.
 */
import type { Command } from "commander";
import type { ReplicaView, ServiceView } from "../gateway/status.js";
import { secondsOption } from "./common.js";
import { tokenFor } from "./credentials.js";

interface StatusFlags {
  apiServer: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
  watch?: boolean;
  interval: number;
}

export function registerStatusCommand(program: Command): void {
  program
    .command("status")
    .argument("[service]", "only this service")
    .description("show services, replicas, health, rps, latency and queues of a running deployment")
    .option("--api-server <url>", "the API server", "http://127.0.0.1:8080")
    .option("--token <token>", "read or control-plane token (default: $ANYSERVE_TOKEN, else the token of the `up` serving --api-server)")
    .option("--token-file <file>", "read the token from this file")
    .option("--json", "print the management API's JSON instead of a table")
    .option("--watch", "refresh in place until Ctrl-C")
    .option("--interval <seconds>", "refresh period with --watch", secondsOption("--interval"), 1)
    .action(async (service: string | undefined, o: StatusFlags) => {
      const base = o.apiServer.replace(/\/+$/, "");
      let token: string | undefined;
      try {
        token = tokenFor(base, { token: o.token, tokenFile: o.tokenFile });
      } catch (err) {
        fail(err as Error);
      }
      const once = async (): Promise<string> => render(await fetchStatus(base, service, token), o.json === true);
      if (!o.watch) {
        process.stdout.write(await once().catch(fail));
        return;
      }
      for (;;) {
        const text = await once().catch((err: Error) => `anyserve status: ${err.message}\n`);
        process.stdout.write(`\x1b[H\x1b[2J${text}\n(refreshing every ${o.interval} s; Ctrl-C to stop)\n`);
        await new Promise((r) => setTimeout(r, o.interval * 1000));
      }
    });
}

interface Status {
  services: ServiceView[];
  stats: Record<string, unknown>;
}

async function fetchStatus(base: string, service: string | undefined, token: string | undefined): Promise<Status> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const get = async <T>(path: string): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(base + path, { headers, signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      throw new Error(
        `cannot reach the API server at ${base} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message})`,
      );
    }
    const body = (await res.json()) as T & { error?: string };
    if (res.status === 401) {
      throw new Error(`${body.error ?? "HTTP 401"} (give --token or --token-file, or set $ANYSERVE_TOKEN; docs/security.md)`);
    }
    if (!res.ok) throw new Error(body.error ?? `${path}: HTTP ${res.status}`);
    return body;
  };
  const services =
    service === undefined
      ? (await get<{ services: ServiceView[] }>("/api/services")).services
      : [await get<ServiceView>(`/api/services/${encodeURIComponent(service)}`)];
  return { services, stats: await get<Record<string, unknown>>("/api/stats") };
}

/** The status as text: JSON, or two aligned tables. */
export function render(s: Status, json: boolean): string {
  if (json) return `${JSON.stringify(s, null, 2)}\n`;
  const services = table(
    ["SERVICE", "STATUS", "REPLICAS", "HEALTHY", "RPS", "P50 ms", "P99 ms", "REQUESTS", "ERRORS", "IN-FLIGHT", "QUEUE"],
    s.services.map((v) => [
      v.name,
      v.status,
      String(v.replicas.length),
      String(v.replicas.filter((r) => r.health === "healthy").length),
      num(v.stats.rps),
      num(v.stats.latency_ms?.p50),
      num(v.stats.latency_ms?.p99),
      String(v.stats.requests),
      String(v.stats.errors),
      String(v.stats.in_flight),
      String(v.stats.queue_depth),
    ]),
  );
  const replicas = table(
    ["REPLICA", "SERVICE", "STATE", "HEALTH", "PID", "IN-FLIGHT", "QUEUE", "WORKERS warm/start/idle/failed", "CPU %", "MEM MB"],
    s.services.flatMap((v) => v.replicas.map((r) => replicaRow(v.name, r))),
  );
  const totals = `requests ${String(s.stats.requests ?? 0)}, errors ${String(s.stats.errors ?? 0)}, rps ${String(s.stats.rps ?? 0)}`;
  return `${services}\n\n${replicas}\n\n${totals}\n`;
}

function replicaRow(service: string, r: ReplicaView): string[] {
  const w = r.workers;
  return [
    r.replica_id,
    service,
    r.state,
    r.health,
    r.pid === null ? "–" : String(r.pid),
    String(r.in_flight),
    r.queue_depth === null ? "–" : String(r.queue_depth),
    w ? `${w.warm}/${w.starting}/${w.idle}/${w.failed}` : "–",
    num(r.cpu_percent),
    num(r.memory_mb),
  ];
}

function num(v: number | null | undefined): string {
  if (v === null || v === undefined) return "–";
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1);
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

function fail(err: Error): never {
  process.stderr.write(`anyserve status: ${err.message}\n`);
  process.exit(1);
}
