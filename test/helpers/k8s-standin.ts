// A stand-in of the Kubernetes API for the tests of `k8s apply` / `delete` and of `POST /api/scale`
// on an API server pod: a real cluster cannot run here, so a small HTTP server answers like the
// API server does for what anyserve's client uses — discovery (`/api/v1`, `/apis/{group}/{version}`),
// server-side apply PATCHes (stored, `metadata.generation` counted), reads of Deployments (whose
// status rolls out over two reads, as a Deployment controller would report it), DELETEs, and the
// `scale` subresource of a Deployment (GET, merge PATCH of `spec.replicas`) — and records every
// request. `kubeconfig` is a file pointing a client at it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects as the tests read them
export type Obj = Record<string, any>;
export interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  /** The bearer token the client showed. */
  authorization: string | undefined;
  body: Obj | undefined;
}

const RESOURCES: Record<string, { group: string; kind: string; plural: string }[]> = {
  "/api/v1": [
    { group: "v1", kind: "ConfigMap", plural: "configmaps" },
    { group: "v1", kind: "Service", plural: "services" },
    { group: "v1", kind: "Secret", plural: "secrets" },
    { group: "v1", kind: "ServiceAccount", plural: "serviceaccounts" },
  ],
  "/apis/apps/v1": [{ group: "apps/v1", kind: "Deployment", plural: "deployments" }],
  "/apis/policy/v1": [{ group: "policy/v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets" }],
  "/apis/rbac.authorization.k8s.io/v1": [
    { group: "rbac.authorization.k8s.io/v1", kind: "Role", plural: "roles" },
    { group: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", plural: "rolebindings" },
  ],
};

export class KubernetesStandin {
  readonly requests: Recorded[] = [];
  /** Objects by their path. */
  readonly stored = new Map<string, Obj>();
  /** A rollout that never completes (`k8s apply --timeout`). */
  neverRollOut = false;
  /** Paths answered 403 Forbidden, as RBAC would refuse them. */
  readonly forbidden = new Set<string>();
  kubeconfig = "";
  /** Reads of each Deployment since its last apply: its rollout completes on the second. */
  readonly #reads = new Map<string, number>();
  readonly #server = createServer((req, res) => void this.#handle(req, res));
  #dir = "";

  async start(namespace = "serving"): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, "127.0.0.1", r));
    const { port } = this.#server.address() as AddressInfo;
    this.#dir = mkdtempSync(path.join(tmpdir(), "anyserve-k8s-standin-"));
    this.kubeconfig = path.join(this.#dir, "kubeconfig");
    // The stand-in speaks plain HTTP; the client accepts that only with TLS checks off.
    writeFileSync(
      this.kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "standin", cluster: { server: `http://127.0.0.1:${port}`, "insecure-skip-tls-verify": true } }],
        users: [{ name: "tester", user: { token: "standin-token" } }],
        contexts: [{ name: "standin", context: { cluster: "standin", user: "tester", namespace } }],
        "current-context": "standin",
      }),
    );
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((r) => this.#server.close(r));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://standin");
    let text = "";
    for await (const c of req) text += c;
    const body = text ? (JSON.parse(text) as Obj) : undefined;
    this.requests.push({
      method: req.method!,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: req.headers["content-type"],
      authorization: req.headers.authorization,
      body,
    });
    const send = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    const status = (code: number, reason: string, message: string) =>
      send(code, { kind: "Status", apiVersion: "v1", status: "Failure", reason, code, message });
    if (this.forbidden.has(url.pathname)) {
      return status(
        403,
        "Forbidden",
        `${req.method} ${url.pathname} is forbidden: User "system:serviceaccount:serving:anyserve-api" cannot`,
      );
    }
    const list = RESOURCES[url.pathname];
    if (req.method === "GET" && list) {
      return send(200, {
        kind: "APIResourceList",
        groupVersion: list[0]!.group,
        resources: list.map((r) => ({
          name: r.plural,
          singularName: "",
          namespaced: true,
          kind: r.kind,
          verbs: ["get", "patch", "delete"],
        })),
      });
    }
    const scale = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)\/scale$/.exec(url.pathname);
    if (scale) return send(...this.#scale(req.method!, url.pathname.slice(0, -"/scale".length), scale[1]!, scale[2]!, body));
    const m = /^\/(?:api|apis\/[^/]+)\/v1\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (!m) return status(404, "NotFound", `no route ${req.method} ${url.pathname}`);
    const key = url.pathname;
    const had = this.stored.get(key);
    if (req.method === "PATCH") {
      const generation = (had?.metadata?.generation ?? 0) + 1;
      const obj = { ...body, metadata: { ...body!.metadata, generation } };
      this.stored.set(key, obj);
      this.#reads.set(key, 0);
      return send(had ? 200 : 201, obj);
    }
    if (!had) return status(404, "NotFound", `${m[3]} not found`);
    if (req.method === "DELETE") {
      this.stored.delete(key);
      return send(200, { kind: "Status", apiVersion: "v1", status: "Success" });
    }
    const n = (this.#reads.get(key) ?? 0) + 1;
    this.#reads.set(key, n);
    const replicas = had.spec?.replicas ?? 1;
    const done = !this.neverRollOut && n >= 2;
    return send(200, {
      ...had,
      status: {
        observedGeneration: had.metadata.generation,
        replicas,
        updatedReplicas: done ? replicas : 0,
        availableReplicas: done ? replicas : 0,
      },
    });
  }

  /** A Deployment's `scale` subresource: its `spec.replicas` read, or set by a merge patch; the answer's status and body. */
  #scale(method: string, key: string, namespace: string, name: string, body: Obj | undefined): [number, unknown] {
    const failure = (code: number, reason: string, message: string): [number, unknown] => [
      code,
      { kind: "Status", apiVersion: "v1", status: "Failure", reason, code, message },
    ];
    const had = this.stored.get(key);
    if (!had) return failure(404, "NotFound", `deployments.apps "${name}" not found`);
    if (method === "PATCH") {
      const replicas = body?.spec?.replicas;
      if (typeof replicas !== "number") return failure(422, "Invalid", "spec.replicas: expected a number");
      this.stored.set(key, { ...had, spec: { ...had.spec, replicas } });
    } else if (method !== "GET") {
      return failure(405, "MethodNotAllowed", `${method} on scale`);
    }
    const replicas = this.stored.get(key)!.spec?.replicas ?? 1;
    return [200, { apiVersion: "autoscaling/v1", kind: "Scale", metadata: { name, namespace }, spec: { replicas }, status: { replicas } }];
  }
}
