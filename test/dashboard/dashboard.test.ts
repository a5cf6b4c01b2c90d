// The live dashboard in a real browser: `anyserve up` with the demo deployment, /dashboard opened
// in Chromium (playwright-core driving the system's /usr/bin/chromium, which
// scripts/ensure-chromium.mjs installs before `npm test`), live charts under load, scaling from
// the page (scale, drain, undrain), signed in with the token `up` made. Leaves a screenshot in
// test-artifacts/dashboard.png.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { launchChromium } from "../helpers/browser.js";
import { DEMO, ROOT, registryIds, startApiServerProc, startCli, startReplicaProc, waitFor } from "../helpers/processes.js";

const ARTIFACTS = path.join(ROOT, "test-artifacts");
const CHAT_BODY = JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["hi"] }] });

interface ServicesBody {
  time: number;
  services: { name: string; replicas: { replica_id: string }[] }[];
}

/** The chat card's rps chart as the page last drew it. */
async function rpsChart(page: Page): Promise<{ points: number; last: number }> {
  return page.locator('[data-service="chat"] [data-chart="rps"]').evaluate((el) => ({
    points: Number(el.getAttribute("data-points") ?? "0"),
    last: Number(el.getAttribute("data-last") || "0"),
  }));
}

test("the dashboard shows every service live, charts load as it happens, and scales a service", async (t) => {
  // As a user runs it: `up` makes the deployment a control-plane token (kept beside the file).
  const up = await startCli(t, ["up", path.join(DEMO, "anyserve.yaml"), "--port", "0", "--grpc-port", "0"], {}, 120_000, {
    defaultAuth: true,
  });
  const url = up.ready.url!;
  const token = readFileSync(up.ready.token_file!, "utf8").trim();
  const authed = { headers: { authorization: `Bearer ${token}` } };

  const browser = await launchChromium(t);
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const pageErrors: string[] = [];
  page.on("pageerror", (err) => pageErrors.push(err.message));
  page.on("console", (msg) => {
    // A blocked inline script/style (CSP) shows up here, not as a page error.
    if (msg.type() === "error" && /Content.Security.Policy/i.test(msg.text())) pageErrors.push(msg.text());
  });

  const res = await page.goto(`${url}/dashboard`);
  assert.equal(res?.status(), 200);
  assert.match(res!.headers()["content-type"] ?? "", /^text\/html; charset=utf-8/);
  assert.match(res!.headers()["content-security-policy"] ?? "", /default-src 'none'/);

  // Signed out, the page asks for the token; signed in (the header's form), it shows the deployment.
  await page.locator("#token-form.needed").waitFor({ timeout: 15_000 });
  assert.match((await page.locator("#status").textContent()) ?? "", /needs a token/);
  assert.equal(await page.locator("[data-service]").count(), 0, "nothing shown without the token");
  await page.locator("#token").fill(token);
  await page.locator("#sign-in").click();

  // A card per deployed service, as the management API lists them.
  const listed = ((await (await fetch(`${url}/api/services`, authed)).json()) as ServicesBody).services.map((s) => s.name).sort();
  assert.deepEqual(listed, ["chat", "classifier-v1", "embed", "heavy", "stream"]);
  for (const name of listed) await page.locator(`[data-service="${name}"]`).waitFor({ timeout: 15_000 });
  await page.locator('[data-service="chat"] [data-replica="chat-0"]').waitFor({ timeout: 15_000 });

  // ~20 requests/s on chat until the page has drawn it: rps above 0, samples accumulating.
  const before = await rpsChart(page);
  let sent = 0;
  let failed = 0;
  const load = setInterval(() => {
    sent++;
    fetch(`${url}/infer`, {
      method: "POST",
      headers: { "X-Capability-Type": "chat", "Content-Type": "application/json" },
      body: CHAT_BODY,
    }).then(
      (r) =>
        r.arrayBuffer().then(() => {
          if (!r.ok) failed++;
        }),
      () => {
        failed++;
      },
    );
  }, 50);
  t.after(() => clearInterval(load));
  const seen = (await waitFor(
    "the chat card's rps chart to show the load",
    async () => {
      const c = await rpsChart(page);
      return c.last > 0 && c.points >= before.points + 3 ? c : undefined;
    },
    30_000,
    200,
  )) as { points: number; last: number };
  clearInterval(load);
  assert.ok(seen.last > 0 && seen.last < 1000, `rps drawn: ${seen.last}`);
  assert.equal(failed, 0, `${failed} of ${sent} load requests failed`);
  await waitFor(
    "the chat request count on the page",
    async () => {
      const shown = Number(((await page.locator('[data-service="chat"] [data-stat="requests"]').textContent()) ?? "").replace(/,/g, ""));
      return shown > 0;
    },
    10_000,
    200,
  );

  // Scale chat to 2 from the page: a second replica row appears.
  await page.locator('[data-service="chat"] [data-input="replicas"]').fill("2");
  await page.locator('[data-service="chat"] [data-action="scale"]').click();
  await page.locator('[data-service="chat"] [data-replica="chat-1"]').waitFor({ timeout: 60_000 });
  const status = (await page.locator("#status").textContent()) ?? "";
  assert.doesNotMatch(status, /scale chat:/, `the page reported a failed scale: ${status}`);

  // Let the new replica show as running before the picture is taken.
  await waitFor(
    "chat-1 running on the page",
    async () => (await page.locator('[data-replica="chat-1"]').getAttribute("data-state")) === "running",
    60_000,
    200,
  );

  // Drain chat-1 from its row, then put it back: the same button turns into Undrain and back.
  const chat1 = page.locator('[data-service="chat"] [data-replica="chat-1"]');
  await chat1.locator('[data-action="drain"]').click();
  await waitFor("chat-1 draining on the page", async () => (await chat1.getAttribute("data-health")) === "draining", 15_000, 100);
  await chat1.locator('[data-action="undrain"]').click();
  await waitFor("chat-1 back in rotation on the page", async () => (await chat1.getAttribute("data-health")) === "healthy", 15_000, 100);
  assert.doesNotMatch((await page.locator("#status").textContent()) ?? "", /drain chat-1:/);

  // Stop, then start, the embed service's workers from its card; the replica reports them cold, then warm.
  const embedWorkers = async (): Promise<string> => {
    const services = ((await (await fetch(`${url}/api/services/embed`, authed)).json()) as { replicas: { http_endpoint: string }[] })
      .replicas;
    const res = await fetch(`${services[0]!.http_endpoint}/workers`, authed);
    return ((await res.json()) as { capabilities: { state: string }[] }).capabilities.map((c) => c.state).join(",");
  };
  await page.locator('[data-service="embed"] [data-action="workers-stop"]').click();
  await waitFor("embed's workers stopped", async () => /^(cold,?)+$/.test(await embedWorkers()), 30_000, 100);
  await page.locator('[data-service="embed"] [data-action="workers-start"]').click();
  await waitFor("embed's workers warm again", async () => /^(warm,?)+$/.test(await embedWorkers()), 30_000, 100);

  // A new tab opened from a link carrying the token in its fragment: signed in at once, and the
  // token is gone from the address bar.
  const linked = await browser.newPage();
  await linked.goto(`${url}/dashboard#token=${encodeURIComponent(token)}`);
  await linked.locator('[data-service="chat"]').waitFor({ timeout: 15_000 });
  assert.equal(new URL(linked.url()).hash, "", "the fragment is removed once read");

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true });
  assert.deepEqual(pageErrors, [], "no script errors or CSP violations on the page");
});

test("replicas started by hand (`anyserve start`, no --service) have a card under their app file's name", async (t) => {
  const api = await startApiServerProc(t);
  const url = api.ready.url!;
  await startReplicaProc(t, url, path.join(DEMO, "chat_app.ts:app"), ["--replica-id", "by-hand-1"]);
  await waitFor("registered", async () => (await registryIds(url)).length === 1);
  const browser = await launchChromium(t);
  const page = await browser.newPage();
  await page.goto(`${url}/dashboard`);
  await page.locator('[data-service="chat_app"] [data-replica="by-hand-1"]').waitFor({ timeout: 15_000 });
  assert.equal(await page.locator("#empty").isHidden(), true, 'the page does not say "No services"');
});
