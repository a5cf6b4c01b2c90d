/** Answers the gateway's frames with the replica's dispatcher (see transport/call-meta.ts for the meta). */
import type { InferBackend } from "../protocol/call.js";
import { answerMeta, errorMeta, fromFrameMeta } from "../transport/call-meta.js";
import type { FrameHandler } from "../transport/frame-server.js";
import type { BodyBudget } from "../util/body-budget.js";

/** What a replica answers the gateway's health probe with (`ready: false` → the probe failed). */
export interface ReplicaHealth {
  ready: boolean;
  reason?: string;
  /** The replica's load, summed over its capabilities (replicas of this version always send it). */
  load?: ReplicaLoad;
}

/**
 * Requests running on workers and waiting in queues, workers by state (idle ones are also warm),
 * and the replica process's memory and CPU (percent of one core since the previous probe; worker
 * threads included, worker processes not).
 */
export interface ReplicaLoad {
  in_flight: number;
  queue_depth: number;
  workers: { starting: number; warm: number; idle: number; failed: number };
  process: { rss_mb: number; cpu_percent: number };
}

/**
 * `budget`: the replica's request bodies held at once (`performance.max_buffered_mb`); a framed
 * call's body counts from its arrival until its answer, and is refused SERVER_OVERLOADED past it
 * (the gateway may send it to another replica: it is not a replica failure).
 */
export function createFrameHandler(backend: InferBackend, health: () => ReplicaHealth, budget?: BodyBudget): FrameHandler {
  return (req, res) => {
    let call: ReturnType<typeof fromFrameMeta>;
    try {
      call = fromFrameMeta(req.meta, req.body, req.signal);
      if (!req.trusted) {
        // Delegation state steers the API server's choice: only the gateway's connection may carry it.
        delete call.depth;
        delete call.tried;
      }
    } catch (err) {
      res.reply(errorMeta(err));
      return;
    }
    const fail = (err: unknown): void => res.reply(errorMeta(err));
    const hold = call.kind === "infer" || call.kind === "stream" ? budget?.hold() : undefined;
    if (hold !== undefined && !hold.take(call.body.length)) {
      const refusal = errorMeta(hold.overloaded(call.body.length));
      if (call.kind === "stream") res.end(refusal);
      else res.reply(refusal);
      return;
    }
    const release = (): void => hold?.release();
    switch (call.kind) {
      case "infer":
        backend
          .infer(call)
          .finally(release)
          .then((out) => res.reply(answerMeta(out), out.body), fail);
        return;
      case "stream":
        backend
          .stream(call, (chunk) => res.chunk(null, chunk.body)) // waits while the stream's window is used up
          .finally(release)
          .then(
            () => res.end({}),
            (err: unknown) => res.end(errorMeta(err)),
          );
        return;
      case "health": {
        const h = health();
        res.reply(
          h.ready ? { ct: "application/json" } : { code: "SHUTTING_DOWN", error: h.reason ?? "not ready" },
          Buffer.from(JSON.stringify(h)),
        );
        return;
      }
      case "meta":
        backend
          .modelMetadata(call.query, call.model?.name ?? "", call.model?.version)
          .then((meta) => res.reply({ ct: "application/json" }, Buffer.from(JSON.stringify(meta))), fail);
        return;
    }
  };
}
