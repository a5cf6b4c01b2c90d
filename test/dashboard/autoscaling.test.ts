// The dashboard's view of an autoscaled service, in a real browser: a service scaled to zero under
// `anyserve up` shows 0 running / 0 wanted, no hand scaling (the autoscaler owns the count), and
// after a request wakes it the card lists the decisions with their reasons, newest first, and the
// cold start. Delays are short config values; every wait polls the page with a deadline. Leaves a
// screenshot in test-artifacts/dashboard-autoscaling.png.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { launchChromium } from "../helpers/browser.js";
import { FIXTURES, ROOT, startCli, waitFor } from "../helpers/processes.js";

test("the dashboard shows an autoscaled service's desired and running replicas and its last decisions with their reasons", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-dash-autoscale-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "anyserve.yaml");
  const autoscaling = {
    min_replicas: 0,
    max_replicas: 2,
    metrics_interval_s: 0.25,
    look_back_period_s: 0.5,
    upscale_delay_s: 0,
    downscale_delay_s: 3,
  };
  writeFileSync(
    file,
    JSON.stringify({
      api_server: { port: 0, grpc_port: null },
      services: { cold: { app: path.join(FIXTURES, "autoscale_app.ts:app"), autoscaling } },
    }),
  );
  const up = await startCli(t, ["up", file], { WORK_MS: "50" }, 120_000);
  const url = up.ready.url!;

  const browser = await launchChromium(t);
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const pageErrors: string[] = [];
  page.on("pageerror", (err) => pageErrors.push(err.message));
  await page.goto(`${url}/dashboard`);
  const card = page.locator('[data-service="cold"]');
  await card.waitFor({ timeout: 15_000 });
  const facts = async () => (await card.locator(".facts").first().textContent()) ?? "";
  const decisions = async () =>
    card.locator("[data-decisions] li[data-decision]").evaluateAll((els) => els.map((e) => e.getAttribute("data-decision")));

  // Cold: nothing runs, nothing is wanted, and the count is not the page's to set.
  await waitFor("0 running / 0 wanted", async () => /replicas 0 running \/ 0 wanted/.test(await facts()), 15_000, 100);
  assert.match(await facts(), /autoscaling 0–2, target 2 per replica/);
  assert.ok(await card.locator("[data-autoscaling]").isVisible(), "the autoscaling box is shown");
  assert.ok(await card.locator('[data-action="scale"]').isDisabled(), "no hand scaling of an autoscaled service");
  assert.deepEqual(await decisions(), []);

  // A request wakes it: served, and the page shows the decision that started a replica.
  const res = await fetch(`${url}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-capability-type": "work" },
    body: JSON.stringify({ inputs: [{ name: "x", datatype: "BYTES", shape: [1], data: ["x"] }] }),
  });
  assert.equal(res.status, 200);
  await waitFor("the wake decision on the page", async () => (await decisions()).includes("request_while_cold"), 15_000, 100);
  const now = card.locator("[data-autoscaling-now]");
  await waitFor("the cold start on the page", async () => /cold starts 1, mean \d/.test((await now.textContent()) ?? ""), 15_000, 100);

  // Idle for the downscale delay: back to zero, the newest decision first, with its reason.
  await waitFor(
    "back to zero on the page",
    async () => (await decisions()).length === 2 && /0 running \/ 0 wanted/.test(await facts()),
    30_000,
    100,
  );
  assert.deepEqual(await decisions(), ["load_below_target", "request_while_cold"]);
  assert.match((await card.locator("[data-decisions] li").first().textContent()) ?? "", /1 → 0/);

  mkdirSync(path.join(ROOT, "test-artifacts"), { recursive: true });
  await page.screenshot({ path: path.join(ROOT, "test-artifacts", "dashboard-autoscaling.png"), fullPage: true });
  assert.deepEqual(pageErrors, [], "no script errors on the page");
});
