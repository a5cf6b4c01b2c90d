"""Replica D of the Python demo: type=stream, one token per word, written the seed's way: a stream
handler ``fn(request, context, stream)`` sending ``ModelStreamInferResponse`` messages."""
import time

from anyserve import AnyServe
from anyserve._proto import grpc_predict_v2_pb2 as pb

app = AnyServe()


@app.capability(type="stream", stream=True, example={"text": "one two three"})
def tokens(request, context, stream):
    words = request.inputs["text"].bytes_contents[0].decode().split()
    delay = float(request.parameters.get("delay_ms", 50)) / 1000
    for word in words:
        context.sleep(delay)
        resp = pb.ModelStreamInferResponse(error_message="", infer_response=pb.ModelInferResponse(model_name="stream", id=request.id))
        out = resp.infer_response.outputs.add()
        out.name = "output"
        out.datatype = "BYTES"
        out.shape.append(1)
        out.contents.bytes_contents.append(word.encode())
        stream.send(resp)
    stream.close()
