"""Replica C of the Python demo: type=heavy, a model loaded when its workers start — lazily, on
the first request (the seed's scenario 4) — and freed when they stop after `idle_timeout`."""
import time

from anyserve import AnyServe, Worker

app = AnyServe()


@app.worker(type="heavy", lazy=True, example={"ms": 500})
class Heavy(Worker):
    def on_start(self):
        # A real app loads weights here (torch.load, …); the demo just takes a moment.
        time.sleep(0.05)
        self.loaded_at = time.time()

    def on_stop(self):
        self.loaded_at = None

    def handle(self, request, context):
        ms = request.inputs["ms"].data[0] if request.inputs.get("ms") is not None else 500
        context.sleep(ms / 1000)  # raises as soon as the request is cancelled (deadline, client gone)
        return {"done": f"worked {ms:g} ms", "replica": context.replica_id, "model_age_s": round(time.time() - self.loaded_at, 3)}
