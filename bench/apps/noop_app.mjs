/**
 * bench/apps/noop_app.ts as plain JavaScript, for bench/worker-boot.ts: a worker of it loads no
 * tsx, so the difference between the two is tsx's share of a worker's boot.
 */
import { AnyServe } from "anyserve";

export const app = new AnyServe();

const noop = () => ({ ok: true });

app.capability({ type: "noop" }, noop);
app.model("noop-model", noop);
