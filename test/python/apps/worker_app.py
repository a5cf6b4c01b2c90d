"""The worker tests' app: echo, sleep (marks its cancellation), boom, coded errors, streams, batches."""
import os
import time

from anyserve import AnyServe, AnyServeError, Worker

app = AnyServe()
MARKS = os.environ.get("MARKS_DIR", "/tmp")


def mark(name, line):
    with open(os.path.join(MARKS, name), "a") as f:
        f.write(line + "\n")


@app.capability(type="echo", on_start=lambda info: mark("hooks", f"start {info.worker}"), on_stop=lambda: mark("hooks", "stop"))
def echo(request, context):
    return {"text": request.inputs["text"].bytes_contents[0].decode(), "replica": context.replica_id}


@app.capability(type="sleep")
def sleep(request, context):
    try:
        context.sleep(float(request.inputs["s"].data[0]))
    except AnyServeError:
        mark("cancelled", context.request_id)
        raise
    return "slept"


@app.capability(type="boom")
def boom(request):
    raise ValueError("boom from the handler")


@app.capability(type="coded")
def coded(request):
    raise AnyServeError("INVALID_PARAMETER", "parameter 'k': expected 1-10, got 99")


@app.capability(type="tokens", stream=True)
def tokens(request, context, stream):
    for i in range(int(request.inputs["n"].data[0])):
        stream.send(f"t{i}")
    stream.close()


@app.capability(type="gen")
def gen(request):
    yield from ("a", "b", "c")


@app.capability(type="batch", batch=True)
def batch(requests, contexts):
    return [ValueError("bad item") if r.inputs["text"].bytes_contents[0] == b"bad" else {"text": r.inputs["text"].bytes_contents[0].decode(), "size": len(requests)} for r in requests]


@app.capability(type="aecho")
async def aecho(request, context):
    return {"text": request.inputs["text"].bytes_contents[0].decode()}


@app.worker(type="model")
class Model(Worker):
    def on_start(self):
        self.weights = 42

    def handle(self, request, context):
        return {"weights": self.weights}


@app.capability(type="caller")
def caller(request, context):
    """Calls another capability through the replica, and reads an object another replica owns."""
    answer = context.call({"type": "embed"}, {"text": "hi"}, timeout=5)
    far = context.objects.get("obj:far-1?size=2&type=application%2Fjson&owner=other&url=http%3A%2F%2F127.0.0.1%3A9")
    return {"answer": answer, "far": far}


@app.capability(type="asleep")
async def asleep(request, context):
    import asyncio

    await asyncio.sleep(float(request.inputs["s"].data[0]))
    return "awake"


@app.capability(type="hog")
def hog(request):
    keep = []
    while True:
        keep.append([0.5] * 1_000_000)


#: Streaming calls a handler left open on purpose (only the job's end closes them).
_left_open = []


@app.capability(type="stream_caller")
def stream_caller(request, context):
    """Streams from another capability through the replica: `take` chunks, then leaves (`leave`: without closing)."""
    take = int(request.inputs["take"].data[0])
    it = context.call_stream({"type": "tokens"}, {"text": "a b c"})
    if request.inputs.get("leave") is not None:
        _left_open.append(it)
        return "".join(next(it)[:1] for _ in range(take))
    got = []
    with it:  # leaving the block closes it: the replica cancels the upstream call before this job answers
        for chunk in it:
            got.append(chunk)
            if len(got) == take:
                break
    return "".join(c[:1] for c in got)


@app.capability(type="gen_n")
def gen_n(request):
    """n chunks from a generator (flow control: not pulled while the window is used up)."""
    for i in range(int(request.inputs["n"].data[0])):
        yield f"g{i}"


@app.capability(type="agen_n")
async def agen_n(request):
    """n chunks from an async generator, on the async strategy's loop."""
    for i in range(int(request.inputs["n"].data[0])):
        yield f"a{i}"


FAR_BIG = "obj:far-2?size=1000000&type=application%2Foctet-stream&owner=other&url=http%3A%2F%2F127.0.0.1%3A9"


@app.capability(type="far_range")
def far_range(request, context):
    """A range of an object another replica owns (FETCH op range)."""
    return context.objects.get_range(FAR_BIG, 10, 5).decode()


#: Object streams a handler left open on purpose (only the job's end closes them).
_left_streams = []


@app.capability(type="far_stream")
def far_stream(request, context):
    """Streams an object another replica owns (FETCH op stream): `take` chunks, then leaves (`leave`: without closing)."""
    take = int(request.inputs["take"].data[0])
    s = context.objects.open_stream(FAR_BIG, offset=int(request.inputs["offset"].data[0]))
    got = []
    for chunk in s:
        got.append(chunk.decode())
        if len(got) == take:
            break
    if request.inputs.get("leave") is not None:
        _left_streams.append(s)
    else:
        s.close()
    return "".join(got)


@app.capability(type="far_astream")
async def far_astream(request, context):
    """far_stream for an async def handler: `take` chunks through aopen_stream, then closes it."""
    take = int(request.inputs["take"].data[0])
    got = []
    async with context.objects.aopen_stream(FAR_BIG) as s:
        async for chunk in s:
            got.append(chunk.decode())
            if len(got) == take:
                break
    return "".join(got)
