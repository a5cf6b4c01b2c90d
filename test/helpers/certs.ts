/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost, made
 * with the machine's `openssl` for TLS tests; removed when the test ends.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface TestCerts {
  dir: string;
  /** The CA's certificate (PEM file): what clients trust. */
  ca: string;
  /** The server's certificate (PEM file, signed by the CA; SAN IP:127.0.0.1, DNS:localhost) and its key. */
  cert: string;
  key: string;
  /** A second CA that signed nothing here: trusting only it must fail. */
  otherCa: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === "ENOENT") throw new Error("these TLS tests make their certificates with openssl, which is not on this machine's PATH");
    throw new Error(`openssl ${args.join(" ")} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

export function makeCerts(t: { after(fn: () => unknown): void }): TestCerts {
  const dir = mkdtempSync(path.join(tmpdir(), "anyserve-certs-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = (name: string): void =>
    openssl(
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        `${name}-key.pem`,
        "-out",
        `${name}.pem`,
        "-days",
        "2",
        "-subj",
        `/CN=${name}`,
      ],
      dir,
    );
  ca("ca");
  ca("other-ca");
  writeFileSync(path.join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n");
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1"], dir);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca-key.pem",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "2",
      "-extfile",
      "san.ext",
    ],
    dir,
  );
  const at = (f: string) => path.join(dir, f);
  return { dir, ca: at("ca.pem"), cert: at("server.pem"), key: at("server-key.pem"), otherCa: at("other-ca.pem") };
}
