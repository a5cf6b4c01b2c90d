/**
 * The scenarios beyond REST through the API server: the gRPC ingress against a bare grpc-js
 * server, the Moleculer peer, the replica → worker-thread hop, the API server's fast ingress and
 * the SDK client's direct path. An optional scenario that fails to start becomes a row with a note
 * instead of stopping the suite.
 */
import path from "node:path";
import { GrpcLoad, runSdkLoad } from "./child-load.js";
import { ROOT, forkServer, freePort, startCli } from "./procs.js";
import { NOOP, NOOP_APP, gatewayPair, httpScenario, type Entry, type Scenario } from "./scenario.js";

/** Runs `start`; on failure the scenario becomes a row saying why (the rest of the suite goes on). */
async function optional(id: string, label: string, start: () => Promise<Entry[]>): Promise<Entry[]> {
  try {
    return await start();
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n", 1)[0]! : String(err);
    process.stderr.write(`${label}: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    return [{ id, label, note: `failed to start: ${why.slice(0, 120)}` }];
  }
}

/**
 * Client → API server gRPC ingress → frames → replica → noop handler, against a bare grpc-js
 * server answering the same ModelInfer, both driven by the same grpc-js load generator.
 */
export async function grpcScenarios(apiGrpc: string, procs: Record<string, number>, log: (line: string) => void): Promise<Scenario[]> {
  const gen = await GrpcLoad.start();
  const bare = await forkServer<{ address: string }>("grpc-bare", path.join(ROOT, "bench/servers/grpc-bare.ts"));
  const make = (id: string, label: string, address: string, p: Record<string, number>, more: Partial<Scenario>): Scenario => ({
    id,
    label,
    baseline: "bare",
    generator: "grpc-js",
    target: `grpc://${address} ModelInfer, model_name noop-model`,
    procs: p,
    c1: true,
    ...more,
    measure: (connections, seconds, warmup, onStart) => gen.run(address, connections, seconds, warmup, onStart),
    async check() {
      await gen.check(address);
    },
  });
  const [full, base] = [await gen.check(apiGrpc), await gen.check(bare.ready.address)];
  log(`gRPC answers: full path ${full} bytes, bare grpc-js ${base} bytes`);
  return [
    make("grpc-bare", "bare grpc-js server (gRPC baseline)", bare.ready.address, { "grpc-bare": bare.child.pid! }, { short: "grpc-js" }),
    make("grpc-infer", "full path gRPC ModelInfer", apiGrpc, procs, { baseline: "grpc-bare" }),
  ];
}

/** moleculer-web's API gateway → the noop service in another process over the TCP transporter. */
export function moleculerScenario(body: string): Promise<Entry[]> {
  const label = "Moleculer gateway → service (TCP)";
  return optional("moleculer", label, async () => {
    const file = path.join(ROOT, "bench/servers/moleculer.ts");
    const svcPort = await freePort();
    let gwPort = await freePort();
    while (gwPort === svcPort) gwPort = await freePort();
    const svc = await forkServer<{ ready: boolean }>("moleculer-service", file, ["service", String(svcPort), String(gwPort)]);
    const gw = await forkServer<{ url: string }>("moleculer-gateway", file, ["gateway", String(gwPort), String(svcPort)]);
    return [
      httpScenario(`${gw.ready.url}/infer`, body, {
        id: "moleculer",
        label,
        headers: NOOP,
        procs: { "moleculer-gateway": gw.child.pid!, "moleculer-service": svc.child.pid! },
      }),
    ];
  });
}

/**
 * The replica → worker-thread hop: the replica's own REST endpoint with the noop app on
 * `--threading-strategy single` (handler on the event loop) and on `--threading-strategy multi --thread-count 1` (one worker
 * thread). Not registered anywhere: they are called directly.
 */
export async function threadHopScenarios(body: string): Promise<Scenario[]> {
  const [single, multi] = await Promise.all([
    startCli("replica-single", ["start", "--app", NOOP_APP, "--port", "0", "--threading-strategy", "single"]),
    startCli("replica-multi", ["start", "--app", NOOP_APP, "--port", "0", "--threading-strategy", "multi", "--thread-count", "1"]),
  ]);
  return [
    httpScenario(`${single.ready.http}/infer`, body, {
      id: "replica-single",
      label: "replica REST /infer, strategy single",
      short: "single",
      headers: NOOP,
      procs: { replica: single.child.pid! },
    }),
    httpScenario(`${multi.ready.http}/infer`, body, {
      id: "replica-multi",
      label: "replica REST /infer, multi 1 thread (thread hop)",
      baseline: "replica-single",
      headers: NOOP,
      procs: { replica: multi.child.pid! },
    }),
  ];
}

/**
 * The replica → worker-process hop, Node and Python: the replica's own REST endpoint with the noop
 * app on `--threading-strategy process --thread-count 1`, once as bench/apps/noop_app.ts (a Node
 * worker process) and once as bench/apps/noop_app.py (a Python worker process). The Python row's
 * baseline is the Node one: issue 26 asks for ≥ 0.7× its throughput.
 */
export function workerProcessScenarios(body: string): Promise<Entry[]> {
  const one = ["--port", "0", "--threading-strategy", "process", "--thread-count", "1"];
  return Promise.all([
    optional("replica-process", "replica REST /infer, process 1 Node worker (process hop)", async () => {
      const node = await startCli("replica-process", ["start", "--app", NOOP_APP, ...one]);
      return [
        httpScenario(`${node.ready.http}/infer`, body, {
          id: "replica-process",
          label: "replica REST /infer, process 1 Node worker (process hop)",
          short: "Node process",
          baseline: "replica-single",
          headers: NOOP,
          procs: { replica: node.child.pid! },
        }),
      ];
    }),
    optional("replica-python", "replica REST /infer, 1 Python worker process (Python hop)", async () => {
      const py = await startCli("replica-python", ["start", "--app", "bench/apps/noop_app.py:app", ...one]);
      return [
        httpScenario(`${py.ready.http}/infer`, body, {
          id: "replica-python",
          label: "replica REST /infer, 1 Python worker process (Python hop)",
          baseline: "replica-process",
          headers: NOOP,
          procs: { replica: py.child.pid! },
        }),
      ];
    }),
  ]).then((x) => x.flat());
}

/** The full path through an API server started with `--fast-ingress`. */
export function fastIngressScenarios(body: string): Promise<Entry[]> {
  const id = "rest-infer-fast";
  const label = "full path REST /infer, fast ingress";
  return optional(id, label, async () => {
    const { api, replica } = await gatewayPair("-fast", ["--fast-ingress"], []);
    // If the fast ingress announces a URL of its own (`fast` in ANYSERVE_READY), the load goes there.
    const url = api.ready.fast ?? api.ready.url!;
    return [
      httpScenario(`${url}/infer`, body, {
        id,
        label,
        headers: NOOP,
        procs: { "api-server": api.child.pid!, replica: replica.child.pid! },
      }),
    ];
  });
}

/**
 * The SDK client calling the replica directly (it asks the API server where the capability lives,
 * then skips it) against the same client calling the bare server, both driven by
 * bench/clients/sdk-load.ts. Its server CPU is not measured (see runSdkLoad).
 */
export function sdkScenarios(apiUrl: string, bareUrl: string): Promise<Entry[]> {
  const rows = [
    {
      id: "sdk-bare",
      label: "SDK client → bare node:http (SDK baseline)",
      args: ["--mode", "rest", "--endpoint", bareUrl],
      more: { short: "SDK→bare" },
    },
    {
      id: "sdk-direct",
      label: "SDK client direct → replica",
      args: ["--mode", "direct", "--api-server", apiUrl],
      more: { baseline: "sdk-bare" },
    },
  ];
  return Promise.all(
    rows.map((r) =>
      optional(r.id, r.label, async () => {
        const check = await runSdkLoad(r.args, 1, 1, 0);
        if (check.errors || !check.requests)
          throw new Error(`sdk-load ${r.args.join(" ")}: ${check.requests} requests, ${check.errors} errors`);
        return [
          {
            id: r.id,
            label: r.label,
            baseline: "bare",
            generator: "sdk",
            target: r.args.join(" "),
            procs: {},
            c1: false,
            ...r.more,
            measure: (connections: number, seconds: number, warmup: number) => runSdkLoad(r.args, connections, seconds, warmup),
            check: () => Promise.resolve(),
          } satisfies Scenario,
        ];
      }),
    ),
  ).then((x) => x.flat());
}
