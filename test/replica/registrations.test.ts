// RegistrationSet (replica/registrations.ts): one registration loop per API server, a name that
// resolves to several addresses (a headless Service) expanded to one loop per address and
// followed as the addresses change. The loops here are recorders; real registration with several
// API servers, and a name resolving to several, run in test/multihost/hosts.test.ts and test/k8s/pods.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RegistrationLoop } from "../../src/replica/registration.js";
import { RegistrationSet } from "../../src/replica/registrations.js";
import { waitFor } from "../helpers/processes.js";

function recorder() {
  const events: string[] = [];
  const make = (url: string) =>
    ({
      registered: true,
      start: async () => void events.push(`start ${url}`),
      stop: async () => void events.push(`stop ${url}`),
      refresh: async () => void events.push(`refresh ${url}`),
    }) as unknown as RegistrationLoop;
  return { events, make };
}

test("several URLs: one loop each; addresses and https names are not resolved", async () => {
  const { events, make } = recorder();
  const asked: string[] = [];
  const set = new RegistrationSet(["http://10.0.0.1:8080", "https://api.example:8443", "http://[fd00::1]:80"], make, {
    resolve: async (h) => {
      asked.push(h);
      return [];
    },
  });
  await set.start();
  assert.deepEqual(set.targets, ["http://10.0.0.1:8080", "https://api.example:8443", "http://[fd00::1]:80"]);
  assert.deepEqual(asked, []);
  await set.refresh();
  await set.stop();
  assert.equal(events.filter((e) => e.startsWith("stop")).length, 3);
});

test("a name resolving to several addresses: one loop per address, followed as they change", async () => {
  const { events, make } = recorder();
  let answer = [
    { address: "10.1.0.5", family: 4 },
    { address: "10.1.0.6", family: 4 },
  ];
  let fail = false;
  const told: string[][] = [];
  const set = new RegistrationSet(["http://anyserve-api-headless:8080/"], make, {
    rediscoverMs: 20,
    onTargets: (targets) => told.push(targets),
    resolve: async () => {
      if (fail) throw new Error("ENOTFOUND");
      return answer;
    },
  });
  await set.start();
  assert.deepEqual(set.targets, ["http://10.1.0.5:8080", "http://10.1.0.6:8080"]);
  // A pod replaced: 10.1.0.5 gone, 10.1.0.7 new.
  answer = [
    { address: "10.1.0.6", family: 4 },
    { address: "10.1.0.7", family: 4 },
  ];
  await waitFor("the new address gets a loop", () => set.targets.includes("http://10.1.0.7:8080"), 5_000, 5);
  assert.deepEqual(set.targets.sort(), ["http://10.1.0.6:8080", "http://10.1.0.7:8080"]);
  // The replica's other calls (util/api-servers.ts) are told each change, and only changes.
  assert.deepEqual(told.at(-1)!.sort(), ["http://10.1.0.6:8080", "http://10.1.0.7:8080"]);
  assert.deepEqual(told[0], ["http://10.1.0.5:8080", "http://10.1.0.6:8080"]);
  await waitFor("the gone address's loop stopped", () => events.includes("stop http://10.1.0.5:8080"), 5_000, 5);
  // DNS failing for a while keeps what there is.
  fail = true;
  const changes = told.length;
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(set.targets.sort(), ["http://10.1.0.6:8080", "http://10.1.0.7:8080"]);
  assert.equal(told.length, changes, "nothing changed: nothing told");
  await set.stop();
});

test("a name with one address per family (localhost: 127.0.0.1 and ::1) stays one API server", async () => {
  const { make } = recorder();
  const set = new RegistrationSet(["http://localhost:8080"], make, {
    resolve: async () => [
      { address: "127.0.0.1", family: 4 },
      { address: "::1", family: 6 },
    ],
  });
  await set.start();
  assert.deepEqual(set.targets, ["http://localhost:8080"]);
  await set.stop();
});
