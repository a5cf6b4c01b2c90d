"""bench/apps/noop_app.ts in Python: the no-op handler (a small JSON answer, inputs untouched) as
capability type=noop and model noop-model, for the Python worker rows of `npm run bench`."""
from anyserve import AnyServe

app = AnyServe()


@app.capability(type="noop")
def noop(request):
    return {"ok": True}


@app.model("noop-model")
def noop_model(request):
    return {"ok": True}
