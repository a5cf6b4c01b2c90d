/**
 * The benchmark's replica app: a no-op handler that answers a small JSON, registered both as the
 * capability `type=noop` (for `POST /infer`) and as the model `noop-model` (for
 * `/v2/models/noop-model/infer`), so both gateway routes reach the same work.
 *
 * It does not touch the inputs on purpose: the suite measures the serving path, and the bare
 * baseline's JSON.parse stands for the decoding the replica already does before the handler runs.
 */
import { AnyServe } from "anyserve";

export const app = new AnyServe();

const noop = (): { ok: boolean } => ({ ok: true });

app.capability({ type: "noop" }, noop);
app.model("noop-model", noop);
