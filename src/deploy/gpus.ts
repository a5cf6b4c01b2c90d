/**
 * The GPUs of this machine, as `nvidia-smi -L` lists them (`GPU 0: NVIDIA A100 … (UUID: …)`); none
 * when the tool is not installed or fails. `up` uses this when the deployment file does not say
 * how many GPUs the node has.
 */
import { execFileSync } from "node:child_process";

export function detectGpus(): number {
  try {
    const out = execFileSync("nvidia-smi", ["-L"], { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "ignore"] });
    return out.split("\n").filter((line) => /^GPU \d+:/.test(line)).length;
  } catch {
    return 0;
  }
}
