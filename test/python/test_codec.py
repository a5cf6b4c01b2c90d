"""The wire formats and the value rules: every datatype round-trips (FP16/BF16 included), binary
contents stay bytes, the seed's contents form, protobuf without the protobuf package, plain returns."""
import json
import math
import struct
import unittest

import fake_replica  # noqa: F401
from anyserve import AnyServeError, ModelInferRequest, ModelInferResponse
from anyserve._proto import grpc_predict_v2_pb2 as pb
from anyserve.codec import decode_request, decode_response, encode_json_request, encode_response
from anyserve.datatypes import bfloat16_bits, bfloat16_value
from anyserve.values import inputs_to_request, response_to_value, result_to_response, value_to_tensor

SAMPLES = {
    "BOOL": [True, False, True],
    "UINT8": [0, 7, 255],
    "UINT16": [0, 65535, 3],
    "UINT32": [0, 2**32 - 1, 5],
    "UINT64": [0, 2**64 - 1, 9],
    "INT8": [-128, 0, 127],
    "INT16": [-32768, 1, 32767],
    "INT32": [-(2**31), 0, 2**31 - 1],
    "INT64": [-(2**63), 0, 2**63 - 1],
    "FP16": [0.5, -2.0, 65504.0],
    "FP32": [0.25, -1.5, 3.0],
    "FP64": [math.pi, -0.0, 1e300],
    "BYTES": [b"\x00\xffraw", "text".encode(), b""],
    "BF16": [1.5, -2.0, 0.0078125],
}


def request_with_all(binary: bool):
    req = ModelInferRequest(id="r1")
    for dt, values in SAMPLES.items():
        req.add_input(dt.lower(), dt, [3], data=values)
    return encode_json_request(req, binary=binary)


class CodecTest(unittest.TestCase):
    def test_every_datatype_round_trips_through_json_binary_and_protobuf(self):
        body, ct, hl = request_with_all(binary=True)
        req = decode_request(body, ct, hl)
        for dt, values in SAMPLES.items():
            self.assertEqual(req.inputs[dt.lower()].data, values, dt)
        self.assertTrue(all(isinstance(b, bytes) for b in req.inputs["bytes"].bytes_contents))
        res = ModelInferResponse(model_name="m")
        for t in req.inputs:
            res.add_output(t.name, t.datatype, t.shape, raw=t.raw)
        for fmt in ("json", "protobuf"):
            # JSON answers carry everything in the binary part when the request asked for it.
            body, ct, hl = encode_response(res, fmt, req)
            back = decode_response(body, ct, hl)
            for dt, values in SAMPLES.items():
                self.assertEqual(back.outputs[dt.lower()].data, values, f"{fmt} {dt}")

    def test_float_outputs_given_as_python_ints_are_written_as_json_numbers(self):
        # fp32_contents=[6, 3] is how a handler naturally writes whole numbers (an embedding of counts).
        res = ModelInferResponse(model_name="m")
        res.add_output("e", "FP32", [2], fp32_contents=[6, 3])
        res.add_output("d", "FP64", [2], data=[1, 2.5])
        body, ct, hl = encode_response(res, "json")
        outputs = {o["name"]: o["data"] for o in json.loads(body)["outputs"]}
        self.assertEqual(outputs, {"e": [6, 3], "d": [1, 2.5]})
        for fmt in ("json", "protobuf"):
            body, ct, hl = encode_response(res, fmt)
            self.assertEqual(decode_response(body, ct, hl).outputs["e"].data, [6.0, 3.0], fmt)

    def test_protobuf_requests_with_typed_contents_and_raw_contents(self):
        m = pb.ModelInferRequest(model_name="m", id="x")
        t = m.inputs.add(name="a", datatype="INT32", shape=[2])
        t.contents.int_contents.extend([1, -2])
        m.parameters["timeout"].int64_param = 5
        req = decode_request(m.SerializeToString(), "application/x-protobuf")
        self.assertEqual(req.inputs["a"].int_contents, [1, -2])
        self.assertEqual(req.parameters, {"timeout": 5})
        raw = pb.ModelInferRequest()
        raw.inputs.add(name="h", datatype="FP16", shape=[1])
        raw.raw_input_contents.append(struct.pack("<e", 1.5))
        self.assertEqual(decode_request(raw.SerializeToString(), "application/x-protobuf").inputs["h"].data, [1.5])
        with self.assertRaises(AnyServeError) as c:
            decode_request(b"\x0a\xff", "application/x-protobuf")
        self.assertEqual(c.exception.code, "INVALID_PROTOBUF")

    def test_the_seeds_contents_form_is_read_with_datatype_and_shape_inferred_and_answered_in_it(self):
        body = json.dumps({"inputs": [{"name": "text", "contents": {"bytes_contents": ["hi", "yo"]}}]}).encode()
        req = decode_request(body, "application/json")
        self.assertEqual((req.inputs["text"].datatype, req.inputs["text"].shape), ("BYTES", [2]))
        self.assertEqual(req.inputs["text"].bytes_contents, [b"hi", b"yo"])
        out, _, _ = encode_response(result_to_response({"n": 3}, "m"), "json", req)
        self.assertEqual(json.loads(out)["outputs"][0]["contents"], {"fp64_contents": [3]})

    def test_bad_requests_have_the_typescript_codecs_codes(self):
        cases = [
            (b"{", "INVALID_JSON"),
            (b"[]", "INVALID_JSON"),
            (b'{"inputs": []}', "INVALID_REQUEST"),
            (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1]}]}', "INVALID_TENSOR"),
            (b'{"inputs": [{"name": "x", "datatype": "NOPE", "shape": [1], "data": [1]}]}', "INVALID_TENSOR"),
            (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1e9, 1e9], "data": [1]}]}', "INVALID_TENSOR"),
            (b'{"parameters": {"p": [1]}, "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}', "INVALID_PARAMETER"),
        ]
        for body, code in cases:
            with self.assertRaises(AnyServeError, msg=body) as c:
                decode_request(body, "application/json")
            self.assertEqual(c.exception.code, code, body)
        with self.assertRaises(AnyServeError) as c:
            decode_request(b"{}", "text/plain")
        self.assertEqual(c.exception.code, "UNSUPPORTED_MEDIA_TYPE")

    def test_bfloat16_rounds_to_nearest_even(self):
        self.assertEqual(bfloat16_bits(1.0), 0x3F80)
        self.assertEqual(bfloat16_value(bfloat16_bits(1.00390625)), 1.0)  # a tie: rounds to even
        self.assertTrue(math.isnan(bfloat16_value(bfloat16_bits(float("nan")))))


class ValuesTest(unittest.TestCase):
    def test_plain_returns_are_encoded_like_the_typescript_sdk(self):
        res = result_to_response({"label": "cat", "score": 0.9, "ok": True, "blob": b"\x00"}, "m")
        self.assertEqual([(t.name, t.datatype) for t in res.outputs], [("label", "BYTES"), ("score", "FP64"), ("ok", "BOOL"), ("blob", "BYTES")])
        self.assertEqual(res.outputs["blob"].parameters, {"content_type": "application/octet-stream"})
        grid = result_to_response([[1, 2], [3, 4]], "m").outputs[0]
        self.assertEqual((grid.name, grid.datatype, grid.shape), ("output", "FP64", [2, 2]))
        mixed = result_to_response({"a": None}, "m").outputs[0]
        self.assertEqual((mixed.name, mixed.parameters.get("content_type")), ("output", "application/json"))
        self.assertEqual(value_to_tensor("big", 2**60).datatype, "INT64")

    def test_response_to_value_unwraps_like_the_typescript_client(self):
        # A dict with a value that is no tensor travels whole as JSON, and comes back whole.
        res = result_to_response({"label": "cat", "score": 0.5, "meta": {"a": 1}}, "m")
        self.assertEqual([t.name for t in res.outputs], ["output"])
        body, ct, hl = encode_response(res, "json")
        self.assertEqual(response_to_value(decode_response(body, ct, hl)), {"label": "cat", "score": 0.5, "meta": {"a": 1}})
        self.assertEqual(response_to_value(result_to_response({"a": 1}, "m")), {"a": 1})
        self.assertEqual(response_to_value(result_to_response(b"\x01\x02", "m")), b"\x01\x02")

    def test_inputs_to_request(self):
        req = inputs_to_request({"text": "hi", "x": [1.5, 2.5]})
        self.assertEqual([(t.name, t.datatype, t.shape) for t in req.inputs], [("text", "BYTES", [1]), ("x", "FP64", [2])])
        self.assertEqual(inputs_to_request([1, 2], {"input": "INT32"}).inputs[0].datatype, "INT32")

    def test_the_seeds_response_and_stream_messages_become_responses(self):
        resp = pb.ModelStreamInferResponse(error_message="", infer_response=pb.ModelInferResponse(model_name="m", id="1"))
        out = resp.infer_response.outputs.add()
        out.name = "o"
        out.datatype = "BYTES"
        out.shape.append(1)
        out.contents.bytes_contents.append(b"hello")
        res = result_to_response(resp, "fallback")
        self.assertEqual(res.outputs["o"].bytes_contents, [b"hello"])
        with self.assertRaises(AnyServeError):
            result_to_response(ModelInferResponse(error="bad input"), "m")

    def test_numpy_arrays_keep_their_dtype_when_numpy_is_there(self):
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy is not installed (it is never required)")
        t = value_to_tensor("x", np.arange(6, dtype=np.float32).reshape(2, 3))
        self.assertEqual((t.datatype, t.shape), ("FP32", [2, 3]))
        self.assertEqual(t.as_numpy().tolist(), [[0, 1, 2], [3, 4, 5]])


if __name__ == "__main__":
    unittest.main()
