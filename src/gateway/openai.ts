/**
 * The OpenAI-compatible front on the API server: the client everyone already has, mapped onto
 * capabilities and OIP tensors (docs/models.md has the table).
 *
 * | OpenAI route                | capability                      | OIP inputs                                  |
 * | --------------------------- | ------------------------------- | ------------------------------------------- |
 * | `POST /v1/chat/completions` | `{type: chat, model}`           | `messages` BYTES [1], JSON (content_type)   |
 * | `POST /v1/completions`      | `{type: completion, model}`     | `prompt` BYTES [1]                          |
 * | `POST /v1/embeddings`       | `{type: embedding, model}`      | `input` BYTES [n]                           |
 * | `GET /v1/models`            | every registered capability of those types, by `model` |            |
 *
 * Every other field of the body travels as a request parameter: scalars (`max_tokens`,
 * `temperature`, …) as they are, arrays and objects (`stop`, `tools`, `response_format`) as their
 * JSON text. A chat or completion handler answers a string, or `{text, prompt_tokens?,
 * completion_tokens?}` (the counts become `usage`); streamed (`stream: true`, SSE ending with
 * `data: [DONE]`), each item it yields is a piece of text in that form. An embedding handler
 * answers a numeric tensor [n, d] (or [d] for one input). Errors use OpenAI's shape:
 * `{error: {message, type, param, code}}` with the catalogue's HTTP status.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AnyServeError } from "../errors.js";
import { normalizeCapability } from "../protocol/capability.js";
import type { InferBackend, IncomingCall } from "../protocol/call.js";
import { decodeResponse, encodeRequest } from "../protocol/codec.js";
import type { InferResponse, Parameters, Tensor } from "../protocol/types.js";
import { outputToValue } from "../protocol/values.js";
import type { Registry } from "../routing/registry.js";
import { SseWriter } from "../frontend/sse.js";
import type { BodyBudget } from "../util/body-budget.js";
import { Cancellation } from "../util/cancel.js";
import type { DataPlaneAuth } from "../util/auth.js";
import { requestIdOf, type RouteHandler } from "../util/http.js";
import { collectBody } from "../util/request-body.js";

export interface OpenAiOptions {
  backend: InferBackend;
  registry: Registry;
  maxBodyBytes: number;
  /** Request bodies held at once over all requests (api-server.ts). */
  bodyBudget?: BodyBudget | undefined;
  defaultTimeoutMs: number;
  auth?: DataPlaneAuth | undefined;
}

type Kind = "chat" | "completion" | "embedding";

/** The body fields that are the request itself, not parameters. */
const OWN_FIELDS = new Set(["model", "messages", "prompt", "input", "stream", "stream_options", "encoding_format"]);

/** The `/v1` routes, for the REST front end's routes table. */
export function openAiRoutes(o: OpenAiOptions): Record<string, RouteHandler> {
  const serve = (kind: Kind) => (req: IncomingMessage, res: ServerResponse) => {
    try {
      o.auth?.check(req.headers.authorization, undefined);
    } catch (err) {
      return sendOpenAiError(res, err);
    }
    const hold = o.bodyBudget?.hold();
    if (hold !== undefined) res.once("close", () => hold.release());
    collectBody(
      req,
      o.maxBodyBytes,
      (body) => {
        handle(o, kind, req, res, body).catch((err: unknown) => sendOpenAiError(res, err));
      },
      (err) => sendOpenAiError(res, err),
      hold,
    );
  };
  return {
    "GET /v1/models": (req, res) => {
      try {
        o.auth?.check(req.headers.authorization, undefined);
      } catch (err) {
        return sendOpenAiError(res, err);
      }
      sendJson(res, 200, { object: "list", data: listModels(o.registry) });
    },
    "POST /v1/chat/completions": serve("chat"),
    "POST /v1/completions": serve("completion"),
    "POST /v1/embeddings": serve("embedding"),
  };
}

/** Models of the capabilities of type chat, completion or embedding, each once. */
function listModels(registry: Registry): { id: string; object: "model"; created: number; owned_by: string; capability: string }[] {
  const seen = new Map<string, { id: string; object: "model"; created: number; owned_by: string; capability: string }>();
  for (const entry of registry.list()) {
    for (const { capability } of entry.capabilities) {
      const type = capability.type;
      const model = capability.model;
      if (model === undefined || (type !== "chat" && type !== "completion" && type !== "embedding")) continue;
      if (!seen.has(model)) seen.set(model, { id: model, object: "model", created: 0, owned_by: "anyserve", capability: type });
    }
  }
  return [...seen.values()];
}

function invalid(message: string, param?: string): AnyServeError {
  return new AnyServeError("INVALID_REQUEST", message, param ? { param } : undefined);
}

async function handle(o: OpenAiOptions, kind: Kind, req: IncomingMessage, res: ServerResponse, raw: Buffer): Promise<void> {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new AnyServeError("INVALID_JSON", `the body is not JSON: ${(err as Error).message}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw invalid("the body must be a JSON object");
  const model = body.model;
  if (typeof model !== "string" || model === "") throw invalid(`'model' must be a non-empty string, got ${JSON.stringify(model)}`, "model");
  const query = normalizeCapability({ type: kind, model }, "model");
  const inputs = inputsOf(kind, body);
  const parameters: Parameters = {};
  for (const [k, v] of Object.entries(body)) {
    if (OWN_FIELDS.has(k) || v === null) continue;
    // OIP parameters are scalars: arrays and objects (`stop`, `tools`, `response_format`, …) travel as their JSON text.
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") parameters[k] = v;
    else if (typeof v === "object") parameters[k] = JSON.stringify(v);
  }
  const encoded = encodeRequest({ inputs, parameters }, "json");
  const cancel = new Cancellation();
  res.once("close", () => {
    if (!res.writableFinished) cancel.abort(new AnyServeError("CANCELLED", "the client closed the connection"));
  });
  const call: IncomingCall = {
    query,
    body: encoded.body,
    contentType: encoded.contentType,
    format: "json",
    timeoutMs: o.defaultTimeoutMs,
    requestId: requestIdOf(req.headers),
    signal: cancel,
  };
  const id = `${kind === "chat" ? "chatcmpl" : kind === "completion" ? "cmpl" : "embd"}-${call.requestId}`;
  const created = Math.floor(Date.now() / 1000);
  if (body.stream === true && kind !== "embedding") {
    const options = body.stream_options;
    const includeUsage = options !== null && typeof options === "object" && (options as { include_usage?: unknown }).include_usage === true;
    return stream(o, call, res, { kind, id, created, model, includeUsage });
  }
  const answer = decodeResponse((await o.backend.infer(call)).body, { contentType: "application/json" });
  if (kind === "embedding") return sendJson(res, 200, embeddings(answer, model, body.encoding_format === "base64"));
  const { text, usage } = textOf(answer);
  const choice =
    kind === "chat"
      ? { index: 0, message: { role: "assistant", content: text }, finish_reason: "stop", logprobs: null }
      : { index: 0, text, finish_reason: "stop", logprobs: null };
  sendJson(res, 200, {
    id,
    object: kind === "chat" ? "chat.completion" : "text_completion",
    created,
    model,
    choices: [choice],
    ...(usage ? { usage } : {}),
  });
}

function inputsOf(kind: Kind, body: Record<string, unknown>): Tensor[] {
  const bytes = (name: string, items: string[], json = false): Tensor => ({
    name,
    datatype: "BYTES",
    shape: [items.length],
    data: items.map((s) => Buffer.from(s, "utf8")),
    ...(json ? { parameters: { content_type: "application/json" } } : {}),
  });
  if (kind === "chat") {
    if (!Array.isArray(body.messages) || body.messages.length === 0)
      throw invalid("'messages' must be a non-empty array of {role, content}", "messages");
    return [bytes("messages", [JSON.stringify(body.messages)], true)];
  }
  const field = kind === "completion" ? "prompt" : "input";
  const value = body[field];
  const items = typeof value === "string" ? [value] : value;
  if (!Array.isArray(items) || items.length === 0 || !items.every((s) => typeof s === "string"))
    throw invalid(`'${field}' must be a string or a non-empty array of strings (token arrays are not supported)`, field);
  return [bytes(field, items as string[])];
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A chat/completion answer: the text (output `text`, `content` or the only output) and usage when counted. */
function textOf(answer: InferResponse): { text: string; usage?: Usage } {
  const values = new Map(answer.outputs.map((t) => [t.name, outputToValue(t)]));
  const main =
    values.get("text") ??
    values.get("content") ??
    values.get("output") ??
    (answer.outputs.length === 1 ? [...values.values()][0] : undefined);
  const text =
    typeof main === "string" ? main : Buffer.isBuffer(main) ? main.toString("utf8") : main === undefined ? "" : JSON.stringify(main);
  const prompt = values.get("prompt_tokens");
  const completion = values.get("completion_tokens");
  if (prompt === undefined && completion === undefined) return { text };
  const p = Number(prompt ?? 0);
  const c = Number(completion ?? 0);
  return { text, usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c } };
}

/** The embeddings answer; `base64`: each vector as little-endian float32 bytes, as OpenAI's client asks by default. */
function embeddings(answer: InferResponse, model: string, base64: boolean): unknown {
  const t = answer.outputs.find((o) => o.name === "embedding") ?? answer.outputs[0];
  if (!t || Array.isArray(t.data))
    throw new AnyServeError("UPSTREAM_PROTOCOL_ERROR", `the embedding handler of '${model}' answered no numeric tensor`);
  const flat = Array.from(outputToValueFlat(t));
  const rows = t.shape.length >= 2 ? t.shape[0]! : 1;
  const width = rows === 0 ? 0 : flat.length / rows;
  const vector = (i: number) => {
    const v = flat.slice(i * width, (i + 1) * width);
    return base64 ? Buffer.from(Float32Array.from(v).buffer).toString("base64") : v;
  };
  const data = Array.from({ length: rows }, (_, i) => ({ object: "embedding", index: i, embedding: vector(i) }));
  return { object: "list", data, model, usage: { prompt_tokens: 0, total_tokens: 0 } };
}

function outputToValueFlat(t: Tensor): number[] {
  const v = outputToValue(t);
  return typeof v === "number" ? [v] : Array.from(v as ArrayLike<number | bigint>, Number);
}

/**
 * A streamed answer as OpenAI's SSE events. Back-pressure as on `/infer/stream` (frontend/sse.ts):
 * while the client's socket is full the chunk sink returns a promise, so the replica's window
 * closes and the handler is not pulled; a client that takes nothing for `write_timeout` is cut.
 */
async function stream(
  o: OpenAiOptions,
  call: IncomingCall,
  res: ServerResponse,
  m: { kind: Kind; id: string; created: number; model: string; includeUsage: boolean },
): Promise<void> {
  const sse = new SseWriter(res, call.requestId);
  let usage: Usage | undefined;
  /** Writes one event; false when the client's socket is full. */
  const write = (event: unknown): boolean => sse.data(Buffer.from(JSON.stringify(event)));
  const chunk = (text: string | undefined, finish: string | null) =>
    m.kind === "chat"
      ? {
          id: m.id,
          object: "chat.completion.chunk",
          created: m.created,
          model: m.model,
          choices: [
            { index: 0, delta: text === undefined ? {} : { role: "assistant", content: text }, finish_reason: finish, logprobs: null },
          ],
        }
      : {
          id: m.id,
          object: "text_completion",
          created: m.created,
          model: m.model,
          choices: [{ index: 0, text: text ?? "", finish_reason: finish, logprobs: null }],
        };
  try {
    await o.backend.stream(call, (encoded) => {
      const piece = textOf(decodeResponse(encoded.body, { contentType: "application/json" }));
      if (piece.usage) usage = piece.usage;
      if (piece.text !== "" && !write(chunk(piece.text, null))) return sse.drained();
    });
  } catch (err) {
    if (!sse.started) throw err;
    write({ error: openAiError(AnyServeError.from(err)).error });
    sse.end();
    return;
  }
  if (m.includeUsage) {
    // As OpenAI does for `stream_options.include_usage`: one more chunk, no choices, the request's usage
    // (zeros when the handler counted nothing).
    write(chunk(undefined, "stop"));
    const { choices: _none, ...head } = chunk(undefined, null);
    write({ ...head, choices: [], usage: usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } });
  } else write({ ...chunk(undefined, "stop"), ...(usage ? { usage } : {}) });
  sse.data(DONE);
  sse.end();
}

/** The last event of an OpenAI stream. */
const DONE = Buffer.from("[DONE]");

/** OpenAI's error shape for an anyserve error. */
function openAiError(e: AnyServeError): { error: { message: string; type: string; param: string | null; code: string } } {
  const type = e.httpStatus === 401 ? "authentication_error" : e.httpStatus < 500 ? "invalid_request_error" : "server_error";
  const param = typeof e.data?.param === "string" ? e.data.param : null;
  return { error: { message: e.message, type, param, code: e.code } };
}

function sendOpenAiError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const e = AnyServeError.from(err, "INTERNAL");
  sendJson(res, e.httpStatus, openAiError(e), e.httpStatus === 503 || e.httpStatus === 429 ? { "retry-after": "1" } : {});
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { "content-type": "application/json", "content-length": body.length, ...headers });
  res.end(body);
}
