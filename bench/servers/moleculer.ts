/**
 * The Moleculer peer: what a user of that framework would deploy instead of anyserve. Two
 * processes, each a ServiceBroker on the TCP transporter:
 *
 * - `moleculer.ts service <port> <gateway port>`: the `noop` service; its `infer` action does the
 *   bare server's work (the body arrives JSON-parsed by the gateway) and returns the same 91-byte
 *   OIP answer.
 * - `moleculer.ts gateway <port> <service port>`: moleculer-web's ApiGateway, `POST /infer` →
 *   `noop.infer`, JSON body parser; reports `{ url }` once the service is reachable.
 *
 * Static node addresses (`urls`, no UDP discovery): deterministic start-up, nothing broadcast.
 * Logger, metrics and tracing off, like the other servers of the suite (they log nothing per
 * request). Exits when the parent's IPC channel closes.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { ServiceBroker, type Context } from "moleculer";
import ApiGateway from "moleculer-web";

const [role, port, peerPort] = process.argv.slice(2);
if ((role !== "service" && role !== "gateway") || !port || !peerPort)
  throw new Error("usage: moleculer.ts service|gateway <port> <peer port>");
const peer = role === "service" ? "gateway" : "service";

const broker = new ServiceBroker({
  nodeID: role,
  logger: false,
  metrics: false,
  tracing: false,
  transporter: {
    type: "TCP",
    options: { udpDiscovery: false, port: Number(port), urls: `127.0.0.1:${peerPort}/${peer}`, gossipPeriod: 0.5 },
  },
});

if (role === "service") {
  broker.createService({
    name: "noop",
    actions: {
      infer: (ctx: Context<{ inputs?: unknown }>) => ({
        model_name: "noop",
        outputs: [{ name: "ok", datatype: "BOOL", shape: [1], data: [Array.isArray(ctx.params.inputs)] }],
      }),
    },
  });
  await broker.start();
  process.send!({ ready: true });
} else {
  broker.createService({
    name: "api",
    mixins: [ApiGateway],
    settings: {
      ip: "127.0.0.1",
      port: 0,
      routes: [{ path: "/", aliases: { "POST /infer": "noop.infer" }, bodyParsers: { json: true }, mappingPolicy: "restrict" }],
      logRequest: null,
      logResponse: null,
    },
  });
  await broker.start();
  await broker.waitForServices("noop", 20_000);
  const server = (broker.getLocalService("api") as unknown as { server: Server }).server;
  process.send!({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}
process.on("disconnect", () => {
  void broker.stop().finally(() => process.exit(0));
});
