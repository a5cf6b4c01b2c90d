/**
 * The framed-hop prototype of bench/hop.ts as a scenario of the suite: a minimal node:http gateway
 * (hop.ts's `startFrameGateway`) forwarding every body over id-tagged frames to hop.ts's frame
 * server. No registry, routing, OIP decoding or handler dispatch — the upper bound of what the real
 * gateway → replica path can reach with this transport. Runs in its own process (so it does not
 * share the load generator's event loop); usage: `frame-gateway.ts <frame server url>`.
 */
import { startFrameGateway } from "../hop.js";

const target = process.argv[2];
if (!target) throw new Error("usage: frame-gateway.ts <frame server url>");
const gw = await startFrameGateway(target);
process.send!({ url: `http://127.0.0.1:${gw.port}` });
process.on("disconnect", () => {
  void gw.close().finally(() => process.exit(0));
});
