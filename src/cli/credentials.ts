/**
 * The control-plane token of a deployment, as the commands find it (docs/security.md):
 *
 * - `anyserve up FILE` uses `--token`, else `$ANYSERVE_TOKEN`, else the deployment's token file —
 *   `.anyserve/token` beside FILE (or `--token-file`) — made on first use with a fresh random
 *   token, readable by its owner only (0600). It also leaves a runtime note (`up-<pid>.json` in
 *   the runtime directory: `$ANYSERVE_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/anyserve`, else
 *   `~/.anyserve/run`) saying which API server URL uses which token file, removed when it stops.
 * - `anyserve status` and `anyserve apply` use `--token`, `--token-file`, `$ANYSERVE_TOKEN`; then
 *   (apply) FILE's own token file; then the runtime note of a running `up` serving the URL asked
 *   for. So the person who started a deployment needs no flag; anyone else needs the token.
 *
 * @example
 * ```ts
 * const { token, file } = deploymentToken("examples/mvp_demo/anyserve.yaml"); // made on first use
 * const stop = noteRuntime("http://127.0.0.1:8080", file);                     // for `anyserve status`
 * tokenFor("http://localhost:8080");                                           // the same token
 * ```
 */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** Where a deployment keeps its token: `.anyserve/token` beside its file. */
export function tokenFileOf(deploymentFile: string): string {
  return path.join(path.dirname(path.resolve(deploymentFile)), ".anyserve", "token");
}

/**
 * The token in `file`, made now (256 random bits, mode 0600, in a directory made 0700) when the
 * file does not exist. Two `up`s making it at once end with one token: the file appears whole or
 * not at all (written aside, then hard-linked into place, which fails if it is there).
 */
export function readOrCreateToken(file: string): { token: string; created: boolean; warning?: string } {
  const existing = readToken(file);
  if (existing !== undefined) return { token: existing, created: false, ...looseMode(file) };
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString("base64url");
  const aside = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  const fd = openSync(aside, "wx", 0o600);
  try {
    writeSync(fd, `${token}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(aside, file);
    return { token, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const theirs = readToken(file);
    if (theirs === undefined) throw new Error(`${file} exists but holds no token`);
    return { token: theirs, created: false };
  } finally {
    unlinkSync(aside);
  }
}

/** The token a file holds (its first line), or undefined when there is no such file. */
export function readToken(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read the token file ${file}: ${(err as Error).message}`);
  }
  const token = text.split("\n")[0]!.trim();
  if (token === "") throw new Error(`the token file ${file} is empty`);
  return token;
}

/** A token file others can read is tightened to 0600, and said so. */
function looseMode(file: string): { warning?: string } {
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) === 0) return {};
  chmodSync(file, 0o600);
  return { warning: `the token file ${file} was readable by others (mode ${mode.toString(8)}): set to 0600` };
}

/** Where running `up`s leave their notes. */
export function runtimeDir(): string {
  if (process.env.ANYSERVE_RUNTIME_DIR) return process.env.ANYSERVE_RUNTIME_DIR;
  if (process.env.XDG_RUNTIME_DIR) return path.join(process.env.XDG_RUNTIME_DIR, "anyserve");
  return path.join(os.homedir(), ".anyserve", "run");
}

interface RuntimeNote {
  url: string;
  token_file: string;
  pid: number;
}

/** Notes that the API server at `url` uses the token in `tokenFile`; returns the function that removes the note. */
export function noteRuntime(url: string, tokenFile: string): () => void {
  const dir = runtimeDir();
  const file = path.join(dir, `up-${process.pid}.json`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(file, "w", 0o600);
    try {
      writeSync(fd, JSON.stringify({ url, token_file: tokenFile, pid: process.pid } satisfies RuntimeNote));
    } finally {
      closeSync(fd);
    }
  } catch {
    return () => undefined; // no runtime directory: status and apply then need --token
  }
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    try {
      unlinkSync(file);
    } catch {
      // gone already
    }
  };
  process.once("exit", remove);
  return remove;
}

/**
 * The token to show the API server at `url`: `--token`, the `--token-file`, `$ANYSERVE_TOKEN`, each
 * of `files` (a deployment's own), else the note of a running `up` serving `url`.
 */
export function tokenFor(
  url: string,
  o: { token?: string | undefined; tokenFile?: string | undefined; files?: string[] } = {},
): string | undefined {
  if (o.token) return o.token;
  if (o.tokenFile) {
    const t = readToken(o.tokenFile);
    if (t === undefined) throw new Error(`no token file at ${o.tokenFile}`);
    return t;
  }
  if (process.env.ANYSERVE_TOKEN) return process.env.ANYSERVE_TOKEN;
  for (const f of o.files ?? []) {
    const t = readToken(f);
    if (t !== undefined) return t;
  }
  const note = runningUp(url);
  return note === undefined ? undefined : readToken(note.token_file);
}

/** The note of a live `up` whose API server is at `url` (loopback names are one host). */
function runningUp(url: string): RuntimeNote | undefined {
  const want = sameServer(url);
  let names: string[];
  try {
    names = readdirSync(runtimeDir()).filter((n) => /^up-\d+\.json$/.test(n));
  } catch {
    return undefined;
  }
  for (const name of names) {
    try {
      const note = JSON.parse(readFileSync(path.join(runtimeDir(), name), "utf8")) as RuntimeNote;
      if (sameServer(note.url) === want && alive(note.pid)) return note;
    } catch {
      // a note being written or removed: skip it
    }
  }
  return undefined;
}

function sameServer(url: string): string {
  try {
    const u = new URL(url);
    const loopback = ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"].includes(u.hostname);
    return `${u.protocol}//${loopback ? "loopback" : u.hostname}:${u.port}`;
  } catch {
    return url;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
