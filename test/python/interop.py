"""Commands the TypeScript interop test (test/python.test.ts) runs, to check that the Python SDK and
the TypeScript one read each other's objects and bodies. One JSON document in (stdin), one out.

- ``{"op": "read", "dir", "refs": [...]}`` → the values (bytes as ``{"b64": …}``, numpy arrays as lists)
- ``{"op": "write", "dir", "owner"}`` → refs of objects made here (bytes, JSON, text)
- ``{"op": "echo", "body" (base64), "ct", "hl", "f"}`` → the request's inputs as outputs, encoded in format f
"""
import base64
import json
import sys

import fake_replica  # noqa: F401  (puts the SDK on sys.path)
from anyserve import ModelInferResponse, ObjectStore
from anyserve.codec import decode_request, encode_response


def plain(v):
    if isinstance(v, bytes):
        return {"b64": base64.b64encode(v).decode()}
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


def main():
    cmd = json.load(sys.stdin)
    if cmd["op"] == "read":
        store = ObjectStore(cmd["dir"])
        out = {"values": [plain(store.get(r)) for r in cmd["refs"]], "types": [store.stat(r)["contentType"] for r in cmd["refs"]]}
    elif cmd["op"] == "write":
        store = ObjectStore(cmd["dir"], owner=cmd.get("owner"))
        refs = [store.create(b"\x00\xffpy"), store.create({"from": "python", "n": [1, 2.5], "ok": True, "none": None}), store.create("héllo", content_type="text/plain")]
        out = {"refs": [r.to_string() for r in refs]}
    else:
        req = decode_request(base64.b64decode(cmd["body"]), cmd.get("ct"), cmd.get("hl"))
        res = ModelInferResponse(model_name="echo", id=req.id)
        for t in req.inputs:
            res.add_output(t.name, t.datatype, t.shape, raw=t.raw, parameters=t.parameters)
        body, ct, hl = encode_response(res, cmd["f"], req)
        out = {"body": base64.b64encode(body).decode(), "ct": ct, "hl": hl}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
