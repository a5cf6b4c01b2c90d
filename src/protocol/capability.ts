/**
 * Capabilities: flat maps of string keys to string values, e.g. `{type: "chat", model: "llama-70b"}`.
 * A query matches a capability when every key of the query is present with an equal value
 * (subset match; the empty query matches everything). Values are compared as strings, so
 * `{gpus: 2}` matches `{gpus: "2"}`.
 */
import { AnyServeError } from "../errors.js";

export type CapabilityMap = Record<string, string>;

/** What users may write: values are turned into strings. */
export type CapabilityInput = Record<string, string | number | boolean>;

export const CAPABILITY_LIMITS = { maxKeys: 64, maxKeyLength: 128, maxValueLength: 1024 } as const;
const KEY_PATTERN = /^[A-Za-z0-9_.-]+$/;

/**
 * Validates and normalises a capability (or query): string values, sane keys, bounded sizes.
 * `where` names the thing in error messages (e.g. `capabilities[2]`).
 */
export function normalizeCapability(input: unknown, where = "capability"): CapabilityMap {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new AnyServeError("INVALID_CAPABILITY", `${where}: expected an object of key: value, got ${describe(input)}`);
  }
  const keys = Object.keys(input);
  if (keys.length > CAPABILITY_LIMITS.maxKeys) {
    throw new AnyServeError("INVALID_CAPABILITY", `${where}: expected at most ${CAPABILITY_LIMITS.maxKeys} keys, got ${keys.length}`);
  }
  const out: CapabilityMap = {};
  for (const key of keys) {
    if (!validKey(key)) {
      throw new AnyServeError(
        "INVALID_CAPABILITY",
        `${where}: key ${JSON.stringify(key.slice(0, 64))} must be 1-${CAPABILITY_LIMITS.maxKeyLength} characters of [A-Za-z0-9_.-]`,
      );
    }
    const value = (input as Record<string, unknown>)[key];
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new AnyServeError("INVALID_CAPABILITY", `${where}.${key}: expected a string, number or boolean, got ${describe(value)}`);
    }
    const text = typeof value === "string" ? value : String(value);
    if (text.length > CAPABILITY_LIMITS.maxValueLength) {
      throw new AnyServeError(
        "INVALID_CAPABILITY",
        `${where}.${key}: expected at most ${CAPABILITY_LIMITS.maxValueLength} characters, got ${text.length}`,
      );
    }
    // An own "__proto__" key must stay a key: plain assignment would set the prototype instead.
    if (key === "__proto__") Object.defineProperty(out, key, { value: text, enumerable: true, writable: true, configurable: true });
    else out[key] = text;
  }
  return out;
}

/**
 * Keys already checked against KEY_PATTERN: every request of a capability carries the same few
 * keys, so the regex runs once per key instead of once per request. Bounded so that a client
 * sending endless new keys cannot grow it.
 */
const knownKeys = new Set<string>();

function validKey(key: string): boolean {
  if (knownKeys.has(key)) return true;
  if (!KEY_PATTERN.test(key) || key.length > CAPABILITY_LIMITS.maxKeyLength) return false;
  if (knownKeys.size >= 4096) knownKeys.clear();
  knownKeys.add(key);
  return true;
}

/** True when every key of `query` is in `capability` with the same (string) value. */
export function matches(capability: CapabilityMap, query: CapabilityMap): boolean {
  for (const key in query) {
    if (capability[key] !== query[key]) return false;
  }
  return true;
}

/** `type=chat,model=llama-70b` — stable (sorted) so it can be a cache key. */
export function capabilityKey(cap: CapabilityMap): string {
  const keys = Object.keys(cap);
  // One key is the common query (`type=…` or `model=…`): no sort, map and join per request.
  if (keys.length === 1) return `${keys[0]!}=${cap[keys[0]!]!}`;
  return keys
    .sort()
    .map((k) => `${k}=${cap[k]}`)
    .join(",");
}

/** The readable form used in messages: `{type=chat, model=llama-70b}`. */
export function formatCapability(cap: CapabilityMap): string {
  return `{${Object.keys(cap)
    .map((k) => `${k}=${cap[k]}`)
    .join(", ")}}`;
}

/**
 * The OIP model routes' second choice. `/v2/models/{m}[/versions/{v}]` (and gRPC `model_name`)
 * ask for `model=m`; when nothing registered has a `model` key equal to `m`, the same call asks
 * for `type=m` instead (a capability with only a `type`, and the seed's replicas, which read
 * `model_name` as the type). Undefined when `query` has no `model` or already names a `type`.
 *
 * @example
 * ```ts
 * modelTypeFallback({ model: "summarize" });               // { type: "summarize" }
 * modelTypeFallback({ model: "m", version: "2" });         // { version: "2", type: "m" }
 * modelTypeFallback({ model: "llama", type: "chat" });     // undefined
 * ```
 */
export function modelTypeFallback(query: CapabilityMap): CapabilityMap | undefined {
  const name = query.model;
  if (name === undefined || query.type !== undefined) return undefined;
  // Spread defines properties (an own "__proto__" key stays a key), unlike assignment.
  const out: CapabilityMap = { ...query };
  delete out.model;
  out.type = name;
  return out;
}

const HEADER_PREFIX = "x-capability-";

/**
 * Reads a capability query from `X-Capability-<Key>: <value>` headers (Node lowercases header
 * names): the key is the rest of the name with `-` turned into `_`. Multi-word header names like
 * `X-Capability-Model-Version` give `model_version`.
 */
export function capabilityFromHeaders(headers: Record<string, string | string[] | undefined>): CapabilityMap {
  const out: CapabilityMap = {};
  let any = false;
  for (const name in headers) {
    if (!name.startsWith(HEADER_PREFIX)) continue;
    const raw = headers[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value === undefined) continue;
    out[keyOfHeader(name)] = value;
    any = true;
  }
  return any ? normalizeCapability(out, "X-Capability headers") : out;
}

/**
 * Capability keys by header name (`x-capability-model-version` → `model_version`). Every request
 * of a capability sends the same few names: a remembered key is one string V8 has already
 * interned, where a fresh one from `slice` and `replace` cost a string-table lookup (and the
 * regex) per request. Bounded, as {@link validKey}'s set is.
 */
const headerKeys = new Map<string, string>();

function keyOfHeader(name: string): string {
  let key = headerKeys.get(name);
  if (key === undefined) {
    key = name.slice(HEADER_PREFIX.length).replace(/-/g, "_");
    if (headerKeys.size >= 4096) headerKeys.clear();
    headerKeys.set(name, key);
  }
  return key;
}

/** The inverse of {@link capabilityFromHeaders}, for clients and delegation. */
export function capabilityToHeaders(cap: CapabilityMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key in cap) out[HEADER_PREFIX + key.replace(/_/g, "-")] = cap[key]!;
  return out;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? JSON.stringify(value.slice(0, 64)) : typeof value;
}

/**
 * A capability as an object, mirroring the original SDK's `Capability` class.
 *
 * @example
 * ```ts
 * const cap = new Capability({ type: "chat", model: "llama-70b" });
 * cap.matches({ type: "chat" }); // true
 * cap.get("gpus", "0");          // "0"
 * ```
 */
export class Capability {
  readonly #map: CapabilityMap;

  constructor(input: CapabilityInput = {}) {
    this.#map = normalizeCapability(input);
  }

  get(key: string, fallback?: string): string | undefined {
    return Object.hasOwn(this.#map, key) ? this.#map[key] : fallback;
  }

  matches(query: CapabilityInput | Capability): boolean {
    return matches(this.#map, query instanceof Capability ? query.toDict() : normalizeCapability(query, "query"));
  }

  /** A copy of the key-values. */
  toDict(): CapabilityMap {
    return { ...this.#map };
  }

  toString(): string {
    return formatCapability(this.#map);
  }
}
