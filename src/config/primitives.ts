/**
 * The building blocks of the config schema's sections (schema.ts composes them): a field's
 * metadata ({@link FieldMeta}) and the value types several sections share — seconds, names,
 * paths, bounded integers.
 *
 * @example
 * ```ts
 * const timeout = seconds.default(30).meta(meta({ update: "restart", help: "seconds a request may run at most" }));
 * ```
 */
import { z } from "zod";

/**
 * What a field's metadata says besides its type.
 * - `update`: how a change applies to a running deployment (Ray's update types): `live` without
 *   restarting anything; `restart` by replacing the service's replicas one at a time (rolling).
 * - `flag`: the `anyserve start` flag that sets it: the field's name with `-` for `_` unless given;
 *   `false` when the field is not the replica's to decide (placement, balancing). A boolean that
 *   defaults to true is set off with `--no-<flag>`.
 * - `help`: one line for `--help`.
 */
export interface FieldMeta {
  update: "live" | "restart";
  flag?: string | false;
  help: string;
}

/** A field's {@link FieldMeta}, in the form zod's `.meta()` takes. */
export const meta = (m: FieldMeta) => m as unknown as Record<string, unknown>;
export const positiveInt = (max: number) => z.number().int().min(1).max(max);
/** Seconds: 1 ms to a day. */
export const seconds = z.number().min(0.001).max(86_400);
/**
 * `write_timeout`: seconds a client may leave its answer unread — its socket full, nothing taken —
 * before the connection (or gRPC stream) is cut and the call cancelled (util/write-guard.ts).
 */
export const writeTimeout = z.number().min(0.1).max(86_400);
export const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 characters of [A-Za-z0-9_.-]");
export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "expected an environment variable name");

/** A file or directory path, or null (PEM files, the Python interpreter, the object store). */
export const optionalPath = z.string().min(1).max(4096).nullable().default(null);
