// gRPC ingress refusals are counted like REST ones: a ModelInfer that names no capability is a
// rejection by code; a routing failure the backend answered (nothing matches) is a request, not one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startApiServer } from "../../src/gateway/api-server.js";
import { Client } from "../../src/sdk/client.js";
import { silentLogger } from "../../src/util/logger.js";
import { sum } from "../helpers/metrics.js";

test("gRPC: no capability → rejected_total{MISSING_CAPABILITY}; no match → requests_total, not a rejection", async (t) => {
  const api = await startApiServer({ port: 0, grpcPort: 0, logger: silentLogger });
  t.after(() => api.close());
  const client = new Client({ apiServer: api.grpcAddress!, protocol: "grpc", timeout: 5_000 });
  t.after(() => client.close());
  const codeOf = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => "OK",
      (err: { code?: string }) => String(err.code),
    );

  assert.equal(await codeOf(client.infer({}, { x: 1 })), "MISSING_CAPABILITY");
  assert.equal(await codeOf(client.infer({ type: "nothing-serves-this" }, { x: 1 })), "NO_MATCHING_CAPABILITY");

  const metrics = await (await fetch(`${api.url}/metrics`)).text();
  assert.equal(
    sum(metrics, "anyserve_gateway_rejected_total", { code: "MISSING_CAPABILITY" }),
    1,
    metrics
      .split("\n")
      .filter((l) => l.includes("rejected"))
      .join("\n"),
  );
  assert.equal(
    sum(metrics, "anyserve_gateway_rejected_total", { code: "NO_MATCHING_CAPABILITY" }),
    0,
    "the backend's answer is not a rejection",
  );
  assert.equal(sum(metrics, "anyserve_gateway_requests_total", { code: "NO_MATCHING_CAPABILITY" }), 1);
});
