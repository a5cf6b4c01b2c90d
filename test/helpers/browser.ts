// Chromium for the dashboard tests: the system's /usr/bin/chromium (scripts/ensure-chromium.mjs
// installs it before `npm test`) driven by playwright-core, headless, closed after the test.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { TestContext } from "node:test";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM = process.env.ANYSERVE_CHROMIUM || "/usr/bin/chromium";

export async function launchChromium(t: TestContext): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `no Chromium at ${CHROMIUM}: run \`node scripts/ensure-chromium.mjs\` (npm test does) or set ANYSERVE_CHROMIUM`,
  );
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  t.after(() => browser.close());
  return browser;
}
