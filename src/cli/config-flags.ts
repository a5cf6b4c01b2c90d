/**
 * `anyserve start`'s flags, derived from the config schema: one flag per replica field and per
 * service field the replica decides (`FieldMeta.flag`), named after the field (`queue_size` →
 * `--queue-size`). A flag only turns its text into a value of the field's kind; the values given
 * are assembled into a replica document and validated by the schema, so ranges and defaults are
 * the schema's and a bad value is reported with the flag's name. `--replica-config` gives the whole
 * document at once (what `anyserve up` passes).
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { ConfigError } from "../config/errors.js";
import { defaultOf, type FieldInfo, kindOf, serviceFields } from "../config/fields.js";
import { parseReplicaDoc, type ReplicaDoc, replicaIdentityShape } from "../config/replica.js";
import type { FieldMeta } from "../config/schema.js";

interface Flag {
  /** Where the value goes in the replica document, e.g. `config.performance.queue_size`. */
  docPath: string;
  /** `--queue-size`. */
  flag: string;
  /** commander's key for it (`queueSize`). */
  key: string;
  field: FieldInfo;
}

const dashed = (s: string) => s.replace(/_/g, "-");
const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function flagsOf(): Flag[] {
  const out: Flag[] = [];
  for (const [key, schema] of Object.entries(replicaIdentityShape)) {
    const field: FieldInfo = {
      path: key,
      meta: schema.meta() as unknown as FieldMeta,
      ...kindOf(schema),
      default: defaultOf(schema),
      schema,
    };
    out.push({ docPath: key, flag: `--${dashed(key)}`, key: camel(dashed(key)), field });
  }
  for (const field of serviceFields()) {
    if (field.meta.flag === false) continue;
    const name = field.meta.flag ?? dashed(field.path.split(".").pop()!);
    out.push({ docPath: `config.${field.path}`, flag: `--${name}`, key: camel(name), field });
  }
  return out;
}

const FLAGS = flagsOf();

/** Adds every config flag, and `--replica-config`, to `cmd`. */
export function addConfigFlags(cmd: Command): Command {
  for (const f of FLAGS) cmd.addOption(optionOf(f));
  return cmd.addOption(
    new Option("--replica-config <json>", "the whole replica document as JSON (what `anyserve up` passes); no other config flag with it"),
  );
}

function optionOf(f: Flag): Option {
  const { kind, default: dflt, meta } = f.field;
  const shown = dflt === undefined || dflt === null || (Array.isArray(dflt) && dflt.length === 0) ? "" : ` (default: ${String(dflt)})`;
  if (kind === "boolean") {
    // A boolean that defaults to true is switched off; one that defaults to false, on.
    return dflt === true ? new Option(`--no-${f.flag.slice(2)}`, `turn off: ${meta.help}`) : new Option(f.flag, meta.help);
  }
  const option = new Option(`${f.flag} <${kind === "list" ? "a,b" : kind === "number" ? "n" : "value"}>`, `${meta.help}${shown}`);
  if (f.field.choices) option.choices(f.field.choices);
  return option.argParser((text: string) => fromText(f, text));
}

function fromText(f: Flag, text: string): unknown {
  switch (f.field.kind) {
    case "number": {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${text}'`);
      return n;
    }
    case "list":
      return text
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    default:
      return text;
  }
}

/**
 * The replica document the command line describes, validated and resolved: `--replica-config`'s
 * document, or the flags given (the schema's defaults for the rest). Throws ConfigError with each
 * problem named by its flag.
 */
export function replicaDocFromFlags(cmd: Command, fromFile?: { file: string; service: string; config: unknown }): ReplicaDoc {
  const given = FLAGS.filter((f) => cmd.getOptionValueSource(f.key) === "cli");
  const whole = cmd.getOptionValue("replicaConfig") as string | undefined;
  if (fromFile !== undefined) {
    // The service's config comes from the deployment file (as `up` resolves it); only who and where the replica is come from flags.
    const serviceFlags = given.filter((f) => f.docPath.startsWith("config."));
    if (whole !== undefined || serviceFlags.length > 0) {
      const extra = [...(whole !== undefined ? ["--replica-config"] : []), ...serviceFlags.map((f) => f.flag)];
      throw new ConfigError("--deployment", [
        { path: "", message: `${fromFile.file} carries service ${fromFile.service}'s config; drop ${extra.join(", ")}` },
      ]);
    }
  }
  if (whole !== undefined) {
    if (given.length > 0) {
      throw new ConfigError("--replica-config", [
        { path: "", message: `carries the whole config; drop ${given.map((f) => f.flag).join(", ")}` },
      ]);
    }
    return parseReplicaDoc(whole, { source: "--replica-config" });
  }
  const doc: Record<string, unknown> = { config: fromFile?.config ?? {} };
  for (const f of given) setAt(doc, f.docPath, cmd.getOptionValue(f.key));
  try {
    return parseReplicaDoc(doc, { source: fromFile ? `${fromFile.file}: services.${fromFile.service}` : "anyserve start" });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(
      "anyserve start",
      err.issues.map((i) => ({ ...i, path: FLAGS.find((f) => f.docPath === i.path)?.flag ?? i.path })),
    );
  }
}

function setAt(doc: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let at = doc;
  for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
  at[keys.at(-1)!] = value;
}

/** Flag names by field path (`performance.queue_size` → `--queue-size`), for docs and tests. */
export function flagOfField(path: string): string | undefined {
  return FLAGS.find((f) => f.docPath === `config.${path}` || f.docPath === path)?.flag;
}
