/**
 * Which worker a call runs on when its handler keeps state in the worker (`HandlerOptions.affinity`,
 * and every class service): every worker has its own copy of the app, so calls that must meet the
 * same state must meet the same worker. A call is *pinned* to a hash; the worker group runs it on
 * the worker in place `hash % thread_count` (worker-group.ts).
 *
 * - `"instance"`: every call on place 0 — one instance holds all the state.
 * - a key function: it gets the decoded request and returns the call's key; calls with equal keys
 *   (compared as strings; objects as JSON) go to the same worker. A class service's key is its
 *   first argument (sdk/service.ts).
 *
 * Reading the key decodes the request here, on the replica's thread, once more than the worker
 * does: a cost only handlers that ask for affinity pay (a class service's arguments are small
 * JSON). A call whose key cannot be read (it does not decode, or the function throws) runs on any
 * worker, which then reports the same error the handler would.
 */
import { decodeRequest } from "../protocol/codec.js";
import type { HandlerEntry } from "../sdk/app.js";
import { InferenceRequest } from "../sdk/request.js";
import type { Task } from "./task.js";

/** The pin of a call, or undefined: any worker. */
export type PinOf = (task: Task) => number | undefined;

/** How the calls of `entry` are pinned, or undefined when they may run on any worker. */
export function pinner(entry: HandlerEntry): PinOf | undefined {
  const affinity = entry.options.affinity;
  if (affinity === undefined) return undefined;
  if (affinity === "instance") return () => 0;
  return (task) => {
    let key: unknown;
    try {
      const req = decodeRequest(task.body, { contentType: task.call.ct, headerLength: task.call.hl });
      key = affinity(new InferenceRequest(req, task.call.q));
    } catch {
      return undefined;
    }
    if (key === undefined || key === null) return undefined;
    return hashKey(typeof key === "string" ? key : JSON.stringify(key));
  };
}

/** FNV-1a over the key's UTF-16 units, then murmur3's finalizer so that nearby keys spread. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
