/** Typed, range-checked readers for tunables set through the environment. */

/** An integer from `name`, or `fallback` when unset; a bad value is an error that names the variable. */
export function envInt(name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`${name}: expected an integer from ${min} to ${max}, got '${raw}'`);
  }
  return n;
}
