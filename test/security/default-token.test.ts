// A fresh deployment is not open (issue 25 #3): `anyserve up` with no token flag makes the
// deployment a control-plane token — `.anyserve/token` beside the file, mode 0600 — hands it to
// its replicas in their environment (never their command line), and the person who started it
// needs no flag: `anyserve status` finds it through the note `up` leaves, `anyserve apply` beside
// the file. Everyone else gets 401 on the registry, the status API and every control route, while
// inference stays open (the README's curl lines).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { readOrCreateToken } from "../../src/cli/credentials.js";
import { BIN, FIXTURES, ROOT, startCli } from "../helpers/processes.js";

const run = promisify(execFile);
const APP = `${path.join(FIXTURES, "test_app.ts")}:app`;

test("anyserve up makes the deployment a token; without it the control plane and its views are closed", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-default-token-"));
  const runtime = path.join(dir, "runtime");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "anyserve.yaml");
  writeFileSync(file, `services:\n  svc:\n    app: ${APP}\n    monitoring: { health_check_interval: 0.5 }\n`);
  const env = { ANYSERVE_RUNTIME_DIR: runtime };
  const up = await startCli(t, ["up", file, "--port", "0", "--grpc-port", "0"], env, 120_000, { defaultAuth: true });
  const url = up.ready.url!;

  // The token file: beside the deployment, the owner's only, announced.
  const tokenFile = path.join(dir, ".anyserve", "token");
  assert.equal(up.ready.token_file, tokenFile);
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  const token = readFileSync(tokenFile, "utf8").trim();
  assert.match(token, /^[\w-]{43}$/);
  assert.ok(
    up.output.some((l) => l.includes(`control-plane token: ${tokenFile}`)),
    "up's summary names the file",
  );
  assert.ok(!up.output.some((l) => l.includes(token)), "up never prints the token itself");
  const authed = { headers: { authorization: `Bearer ${token}` } };

  // Closed without the token: the registry, the route, the status API; every control route.
  for (const p of ["/registry", "/route?type=whoami", "/routes", "/api/services", "/api/deployment", "/metrics"]) {
    const res = await fetch(`${url}${p}`);
    assert.equal(res.status, 401, p);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="anyserve", scope="read"', p);
  }
  const control: [string, string, unknown][] = [
    [
      "POST",
      "/register",
      { replica_id: "svc-0", endpoint: "127.0.0.1:1", http_endpoint: "http://127.0.0.1:1", capabilities: [{ type: "whoami" }] },
    ],
    ["DELETE", "/unregister", { replica_id: "svc-0" }],
    ["POST", "/heartbeat", { replica_id: "svc-0" }],
    ["POST", "/api/replicas/svc-0/drain", {}],
    ["POST", "/api/scale", { service: "svc", replicas: 0 }],
  ];
  for (const [method, p, body] of control) {
    const res = await fetch(`${url}${p}`, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    assert.equal(res.status, 401, `${method} ${p}`);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="anyserve", scope="control"', `${method} ${p}`);
  }
  // With the token, it reads; the replica is registered and was not touched.
  const reg = (await (await fetch(`${url}/registry`, authed)).json()) as { replicas: { replica_id: string; available: boolean }[] };
  assert.deepEqual(
    reg.replicas.map((r) => [r.replica_id, r.available]),
    [["svc-0", true]],
  );
  // Inference stays open, as the README's curl lines have it.
  const answer = await fetch(`${url}/infer`, {
    method: "POST",
    headers: { "x-capability-type": "whoami", "content-type": "application/json" },
    body: JSON.stringify({ inputs: [{ name: "x", datatype: "INT32", shape: [1], data: [1] }] }),
  });
  assert.equal(answer.status, 200);

  // The replica got the token in its environment, never on its command line.
  const deployment = (await (await fetch(`${url}/api/deployment`, authed)).json()) as {
    services: { svc: { replicas: { pid: number | null }[] } };
  };
  const pid = deployment.services.svc.replicas[0]!.pid!;
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  assert.ok(cmdline.includes("start") && !cmdline.includes(token), "not on the replica's command line");
  assert.ok(readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`ANYSERVE_TOKEN=${token}`), "in its environment");

  // The person who started it needs no flag: status through up's runtime note, apply beside the file.
  const status = await run(process.execPath, [BIN, "status", "--api-server", url], {
    env: { ...process.env, ...env, ANYSERVE_TOKEN: "" },
  });
  assert.match(status.stdout, /^svc\s+/m);
  const applied = await run(process.execPath, [BIN, "apply", file, "--api-server", url], {
    env: { ...process.env, ANYSERVE_RUNTIME_DIR: path.join(dir, "elsewhere"), ANYSERVE_TOKEN: "" },
  });
  assert.match(applied.stdout, /^svc: scheduled/m);
  // Anyone else is told what is missing.
  const refused = await run(process.execPath, [BIN, "status", "--api-server", url], {
    env: { ...process.env, ANYSERVE_RUNTIME_DIR: path.join(dir, "elsewhere"), ANYSERVE_TOKEN: "" },
  }).catch((err: { code: number; stderr: string }) => err);
  assert.equal((refused as { code: number }).code, 1);
  assert.match((refused as { stderr: string }).stderr, /needs 'Authorization: Bearer <token>'.*give --token or --token-file/);

  // The note goes away with `up`.
  assert.equal(readdirSync(runtime).filter((n) => n.startsWith("up-")).length, 1);
  await up.stop();
  assert.deepEqual(
    readdirSync(runtime).filter((n) => n.startsWith("up-")),
    [],
  );
});

test("the token file is made once: concurrent makers agree, a later up reuses it, a loose mode is tightened", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-token-file-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, ".anyserve", "token");
  const maker = `import { readOrCreateToken } from ${JSON.stringify(path.join(ROOT, "src/cli/credentials.ts"))}; process.stdout.write(readOrCreateToken(${JSON.stringify(file)}).token);`;
  const make = () =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", maker], { cwd: ROOT });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d));
      child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`maker exited ${code}`))));
    });
  const tokens = await Promise.all(Array.from({ length: 6 }, make));
  assert.equal(new Set(tokens).size, 1, `one token for all: ${tokens.join(" ")}`);
  assert.equal(readFileSync(file, "utf8").trim(), tokens[0]);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(path.dirname(file)), ["token"], "no file left aside");
  chmodSync(file, 0o644);
  const again = readOrCreateToken(file);
  assert.equal(again.token, tokens[0]);
  assert.match(again.warning ?? "", /readable by others \(mode 644\): set to 0600/);
  assert.equal(statSync(file).mode & 0o777, 0o600);
});
