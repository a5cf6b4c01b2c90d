"""Replica A of the Python demo: type=chat, models `demo` and `llama-70b` (the seed's scenario 1),
and `objects` (scenario 3: a ref instead of the data, across replicas and languages)."""
from anyserve import AnyServe

app = AnyServe()


def text_of(request):
    return request.inputs["text"].bytes_contents[0].decode()


@app.capability(type="chat", model="demo", example={"text": "hello"})
def chat_demo(request, context):
    return {"text": f"[demo] you said: {text_of(request)}", "replica": context.replica_id}


@app.capability(type="chat", model="llama-70b")
def chat_llama(request, context):
    return {"text": f"[llama-70b] a very large answer to: {text_of(request)}", "replica": context.replica_id}


@app.capability(type="chat", model="objects")
def chat_objects(request, context):
    """Stores the conversation as an object, hands `embed` the ref instead of the data, and
    returns what embed made of it."""
    ref = context.objects.create({"text": text_of(request), "from": context.replica_id})
    embedded = context.call({"type": "embed"}, {"data": ref})
    return {"ref": ref, **embedded}


@app.capability(type="chat", model="notes")
def chat_notes(request, context):
    """Calls the TypeScript `notes` service, which stores the text as an object, has the Python
    embed read it and keeps the ref in the Python `kv` service; reads the object back by its ref."""
    added = context.call_service("notes").add(text_of(request))
    stored = context.objects.get(added["ref"])
    return {"note": stored["text"], "dims": added["dims"], "kept": context.call_service("kv").get(added["id"]) == added["ref"]}
