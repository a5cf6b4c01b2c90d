/**
 * A task: one encoded inference call as it travels to whatever runs it — the replica's own event
 * loop, a worker thread or a child process. It carries bytes, never decoded tensors, so decoding
 * and encoding happen where the handler runs (off the replica's main thread for thread and
 * process strategies). `TaskCall` is the part that crosses as JSON.
 */
import type { WireError } from "../errors.js";
import type { IncomingCall } from "../protocol/call.js";
import type { CapabilityMap } from "../protocol/capability.js";
import type { EncodedBody, WireFormat } from "../protocol/types.js";

/** The JSON part of a task (worker-protocol.md names the same fields). */
export interface TaskCall {
  /** The capability query the call was routed with. */
  q: CapabilityMap;
  /** Body Content-Type and, for the binary tensor extension, the JSON part's length. */
  ct?: string;
  hl?: number;
  /** Answer wire format. */
  f: WireFormat;
  /** Request id. */
  rid: string;
  /** Deadline, epoch milliseconds (the request's `timeout` parameter may lower it). */
  dl: number;
  /** Delegation depth so far. */
  d?: number;
  /** Model route `{name, version}`, for model names in answers and errors. */
  m?: { name: string; version?: string | undefined };
}

/** One call: its JSON part and its body bytes. */
export interface Task {
  call: TaskCall;
  body: Buffer;
}

/** What a job does with its tasks: answer one, stream one, or run a batch handler on several. */
export type JobMode = "infer" | "stream" | "batch";

/** One item of a batch's answer. */
export type BatchOutcome = { ok: true; value: EncodedBody } | { ok: false; error: WireError };

/**
 * Callbacks from the running task to its submitter. `lowerDeadline` is called once the request is
 * decoded and its `timeout` parameter asks for less time than the submitter gave (index = the
 * task's position in a batch, 0 otherwise).
 */
export interface TaskHooks {
  lowerDeadline?(index: number, deadline: number): void;
}

/** Builds a task from a front end's call; `deadline` is already capped by the service timeout. */
export function taskOf(call: IncomingCall, deadline: number): Task {
  const tc: TaskCall = { q: call.query, f: call.format, rid: call.requestId, dl: deadline };
  if (call.contentType !== undefined) tc.ct = call.contentType;
  if (call.headerLength !== undefined) tc.hl = call.headerLength;
  if (call.depth !== undefined) tc.d = call.depth;
  if (call.model !== undefined) tc.m = call.model;
  return { call: tc, body: call.body };
}
