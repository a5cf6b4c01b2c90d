// Several servers in one process (tests, the Environment API): each server's /metrics shows the
// process series once, with that server's labels, while prom-client's default collectors — which
// cannot be stopped — exist once per process instead of once per server.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Counter } from "prom-client";
import { createMetricsRegistry, metricsText } from "../../src/metrics/exposition.js";

const series = (text: string, name: string): string[] =>
  text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

test("each registry's text has the process series once, with its own labels and its own metrics", async () => {
  const a = createMetricsRegistry({ replica: "a-0" });
  const b = createMetricsRegistry({ replica: "b-0" });
  new Counter({ name: "anyserve_test_only_a_total", help: "a's own", registers: [a] }).inc(3);

  const textA = await metricsText(a);
  const textB = await metricsText(b);
  assert.deepEqual(
    series(textA, "anyserve_process_cpu_seconds_total").map((l) => l.split(" ")[0]),
    ['anyserve_process_cpu_seconds_total{replica="a-0"}'],
  );
  assert.deepEqual(
    series(textB, "anyserve_process_cpu_seconds_total").map((l) => l.split(" ")[0]),
    ['anyserve_process_cpu_seconds_total{replica="b-0"}'],
  );
  assert.deepEqual(series(textA, "anyserve_test_only_a_total"), ['anyserve_test_only_a_total{replica="a-0"} 3']);
  assert.deepEqual(series(textB, "anyserve_test_only_a_total"), [], "b does not show a's metrics");
  assert.equal(textA.match(/^# TYPE anyserve_nodejs_eventloop_lag_seconds gauge$/gm)?.length, 1);
});

test("the default collectors are shared: a server's registry holds only its own metrics", async () => {
  const registries = Array.from({ length: 20 }, (_, i) => createMetricsRegistry({ replica: `r-${i}` }));
  for (const r of registries) {
    assert.deepEqual(
      r.getMetricsAsArray().map((m) => m.name),
      [],
      "no per-server process collectors (they could never be stopped)",
    );
  }
  const first = await metricsText(registries[0]!);
  const last = await metricsText(registries[19]!);
  assert.equal(series(first, "anyserve_process_resident_memory_bytes").length, 1);
  assert.equal(series(last, "anyserve_process_resident_memory_bytes").length, 1);
  assert.match(last, /anyserve_process_resident_memory_bytes\{replica="r-19"\} \d+/);
});
