"""Replica B of the Python demo: type=embed, an FP32 vector (a toy character hash). The text comes
inline (`text`) or as a ref to an object holding ``{"text": …}`` (`data`), made by a Python or a
TypeScript replica."""
import math
import struct

from anyserve import AnyServe, ModelInferResponse

app = AnyServe()
DIM = 8


@app.capability(type="embed", example={"text": "hello"})
def embed(request, context):
    if request.inputs.get("data") is not None:
        text = context.objects.get(request.inputs["data"])["text"]
    else:
        text = request.inputs["text"].bytes_contents[0].decode()
    vector = [0.0] * DIM
    for i, ch in enumerate(text):
        vector[i % DIM] += ord(ch) / 255
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    response = ModelInferResponse(model_name="embed", id=request.id)
    response.add_output("embedding", "FP32", [DIM], fp32_contents=[v / norm for v in vector])
    response.add_output("embedded_by", "BYTES", [1], bytes_contents=[context.replica_id.encode()])
    response.add_output("chars", "INT32", [1], int_contents=[len(text)])
    return response
