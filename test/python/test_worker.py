"""The Python worker against a stand-in replica: the protocol as docs/worker-protocol.md writes it."""
import json
import os
import shutil
import tempfile
import time
import unittest

from fake_replica import HERE, P, FakeReplica, call, json_body

APP = os.path.join(HERE, "apps", "worker_app.py:app")


def handler_index(name):
    order = ["echo", "sleep", "boom", "coded", "tokens", "gen", "batch", "aecho", "model", "caller", "asleep", "hog", "stream_caller", "gen_n", "agen_n", "far_range", "far_stream", "far_astream"]
    return order.index(name)


class WorkerProtocolTest(unittest.TestCase):
    def start(self, concurrency=1, handler=None, app=APP, open_=(), **env):
        """A worker of APP; ``handler`` set: the stand-in OPENs it once READY is read and sends its RUNs
        there; else ``open_`` handlers are OPENed here."""
        self.marks = tempfile.mkdtemp(prefix="anyserve-marks-")
        self.addCleanup(shutil.rmtree, self.marks, True)
        unit = (handler_index(handler) if app == APP else 0) if handler is not None else None
        r = FakeReplica(app, unit, concurrency, env=dict(env, MARKS_DIR=self.marks))
        self.addCleanup(r.close)
        hello = r.expect(P.HELLO)
        self.assertEqual(hello[2]["key"], r.key)
        self.assertEqual(hello[2]["protocol"], 2)
        if open_:
            r.expect(P.READY)
            for name in open_:
                r.open(handler_index(name))
        return r

    def marks_of(self, name):
        p = os.path.join(self.marks, name)
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return f.read().split("\n")[:-1]

    def test_hello_ready_run_and_stop_with_hooks(self):
        r = self.start(handler="echo")
        r.expect(P.READY)  # and the stand-in's OPEN of echo: its unit's start hooks ran
        self.assertEqual(self.marks_of("hooks"), ["start process-1"])
        r.run(7, "infer", [call()], [json_body(text="hi")])
        t, id_, meta, body = r.expect(P.RESULT)
        self.assertEqual((id_, meta), (7, None))  # plain JSON answers carry no meta
        self.assertEqual(json.loads(body)["outputs"][0]["data"], ["hi"])
        r.send(P.STOP, 0)
        r.expect(P.STOPPED)
        self.assertEqual(r.proc.wait(timeout=10), 0)
        self.assertEqual(self.marks_of("hooks"), ["start process-1", "stop"])

    def test_protocol_2_open_runs_the_start_hooks_and_close_the_stop_hooks_in_job_order(self):
        r = self.start()
        r.expect(P.READY)
        self.assertEqual(self.marks_of("hooks"), [])  # nothing started before OPEN
        r.run(1, "infer", [call()], [json_body(text="x")], h=handler_index("echo"))
        self.assertEqual(r.expect(P.RESULT)[2]["code"], "INTERNAL")  # not opened
        r.open(handler_index("echo"))
        self.assertEqual(self.marks_of("hooks"), ["start process-1"])
        r.run(2, "infer", [call()], [json_body(text="x")], h=handler_index("echo"))
        r.send(P.CLOSE, 0, {"h": handler_index("echo")})
        self.assertEqual(r.expect(P.RESULT)[1], 2)  # the job sent before CLOSE ran first
        self.assertEqual(r.expect(P.CLOSED)[2], {"h": handler_index("echo")})
        self.assertEqual(self.marks_of("hooks"), ["start process-1", "stop"])

    def test_errors_keep_their_codes_and_the_message_not_the_traceback(self):
        r = self.start(open_=("echo", "boom", "coded"))
        r.run(1, "infer", [call()], [json_body(text="x")], h=handler_index("boom"))
        self.assertEqual(r.expect(P.RESULT)[2], {"code": "WORKER_ERROR", "error": "boom from the handler"})
        r.run(2, "infer", [call()], [json_body(text="x")], h=handler_index("coded"))
        self.assertEqual(r.expect(P.RESULT)[2]["code"], "INVALID_PARAMETER")
        r.run(3, "infer", [call()], [b"{nope"], h=handler_index("echo"))
        self.assertEqual(r.expect(P.RESULT)[2]["code"], "INVALID_JSON")
        r.run(4, "infer", [call()], [json_body(text="x")])  # no handler index: refused, naming it
        answer = r.expect(P.RESULT)
        self.assertEqual((answer[1], answer[2]["code"]), (4, "INTERNAL"))
        self.assertIn("handler index h", answer[2]["error"])

    def test_cancel_reaches_the_running_handler_and_drops_a_queued_job(self):
        r = self.start(open_=("sleep",))
        r.run(1, "infer", [call(rid="long")], [json_body(s=30)], h=handler_index("sleep"))
        r.run(2, "infer", [call(rid="queued")], [json_body(s=30)], h=handler_index("sleep"))
        r.send(P.CANCEL, 2)  # queued behind: answered at once, never run
        self.assertEqual(r.expect(P.RESULT)[1:3], (2, {"code": "CANCELLED", "error": "the request was cancelled"}))
        r.send(P.CANCEL, 1)  # running: its context.sleep raises
        self.assertEqual(r.expect(P.RESULT)[1:3], (1, {"code": "CANCELLED", "error": "the request was cancelled"}))
        self.assertEqual(self.marks_of("cancelled"), ["long"])

    def _chunks_before_end(self, r):
        """The CHUNKs' bodies up to the END, and the END's meta."""
        bodies = []
        while True:
            t, _, meta, body = r.next()
            if t == P.END:
                return bodies, meta
            self.assertEqual(t, P.CHUNK)
            bodies.append(body)

    def _flow_controlled(self, concurrency, handler):
        """A stream of 50 chunks under a window of two: two come, one more per credit of its cost, none after the cancel."""
        r = self.start(concurrency=concurrency, open_=(handler,))
        r.run(1, "stream", [call()], [json_body(n=50)], h=handler_index(handler), w=1)
        first = r.expect(P.CHUNK)[3]
        cost = len(first) + 64  # transport/frames.ts chunkCost
        # w=1: the first chunk used the window up; nothing more comes until a credit.
        r.send(P.CREDIT, 1, {"n": cost})
        r.expect(P.CHUNK)
        r.send(P.CANCEL, 1)
        rest, end = self._chunks_before_end(r)
        self.assertEqual(end["code"], "CANCELLED")
        # Without flow control all 50 would have been sent before the END; at most one more was on
        # its way when the cancel came (none: the handler waits after each chunk that uses the window up).
        self.assertEqual(len(rest), 0, f"{len(rest)} chunks after the cancel")

    def test_a_stream_waits_for_credit_once_its_window_is_used_up_stream_send(self):
        self._flow_controlled(1, "tokens")

    def test_a_stream_waits_for_credit_once_its_window_is_used_up_generator_and_async_generator(self):
        self._flow_controlled(1, "gen_n")
        self._flow_controlled(4, "agen_n")

    def test_streams_generators_and_batches(self):
        r = self.start(open_=("tokens", "gen", "batch"))
        r.run(1, "stream", [call()], [json_body(n=3)], h=handler_index("tokens"))
        chunks = [json.loads(r.expect(P.CHUNK)[3])["outputs"][0]["data"][0] for _ in range(3)]
        self.assertEqual(chunks, ["t0", "t1", "t2"])
        self.assertEqual(r.expect(P.END)[2], {})
        r.run(2, "stream", [call()], [json_body(x=1)], h=handler_index("gen"))
        self.assertEqual([json.loads(r.expect(P.CHUNK)[3])["outputs"][0]["data"][0] for _ in range(3)], ["a", "b", "c"])
        r.expect(P.END)
        r.run(3, "batch", [call(), call(), call()], [json_body(text="a"), json_body(text="bad"), b"["], h=handler_index("batch"))
        _, _, meta, body = r.expect(P.RESULT)
        items = meta["items"]
        self.assertEqual(items[1], {"code": "WORKER_ERROR", "error": "bad item"})
        self.assertEqual(items[2]["code"], "INVALID_JSON")
        answer = json.loads(body[: items[0]["n"]])
        self.assertEqual({o["name"]: o["data"][0] for o in answer["outputs"]}, {"text": "a", "size": 2})

    def test_the_timeout_parameter_lowers_the_deadline_and_says_so(self):
        r = self.start(handler="echo")
        r.expect(P.READY)
        body = json.dumps({"parameters": {"timeout": 2_000_000}, "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"]}]}).encode()
        r.run(1, "infer", [call(ms=60_000)], [body])
        _, id_, meta, _ = r.expect(P.DEADLINE)
        self.assertEqual((id_, meta["i"]), (1, 0))
        self.assertLess(meta["dl"], time.time() * 1000 + 2_500)
        r.expect(P.RESULT)

    def test_protobuf_answers_when_the_caller_speaks_protobuf(self):
        r = self.start(handler="echo")
        r.expect(P.READY)
        r.run(1, "infer", [call(f="protobuf")], [json_body(text="hi")])
        _, _, meta, body = r.expect(P.RESULT)
        self.assertEqual(meta, {"ct": "application/x-protobuf"})
        from anyserve._proto import grpc_predict_v2_pb2 as pb

        self.assertEqual(pb.ModelInferResponse.FromString(body).outputs[0].name, "text")

    def test_call_and_fetch_go_through_the_replica(self):
        store = tempfile.mkdtemp(prefix="anyserve-objects-")
        self.addCleanup(shutil.rmtree, store, True)
        r = self.start(handler="caller", ANYSERVE_WORKER_OBJECTS=json.dumps({"dir": store, "owner": {"replicaId": "fake-replica"}}))
        r.expect(P.READY)
        r.run(5, "infer", [call()], [json_body(x=1)], h=handler_index("caller"))
        _, call_id, meta, body = r.expect(P.CALL)
        self.assertEqual((meta["job"], meta["q"]), (5, {"type": "embed"}))
        self.assertTrue(0 < meta["timeout"] <= 5000)
        self.assertIn(b'"name":"text"', body)
        answer = json.dumps({"model_name": "embed", "outputs": [{"name": "dims", "datatype": "INT32", "shape": [1], "data": [8]}]}).encode()
        r.send(P.CALL_RESULT, call_id, None, answer)
        _, fetch_id, meta, _ = r.expect(P.FETCH)
        self.assertEqual(meta["op"], "get")
        self.assertTrue(meta["ref"].startswith("obj:far-1?"))
        r.send(P.FETCHED, fetch_id, {"contentType": "application/json", "size": 2}, b"[7]")
        _, _, meta, body = r.expect(P.RESULT)
        self.assertEqual(json.loads(json.loads(body)["outputs"][0]["data"][0]), {"answer": {"dims": 8}, "far": [7]})

    def _stream_call(self, r, job, **inputs):
        r.run(job, "infer", [call()], [json_body(**inputs)], h=handler_index("stream_caller"))
        _, sid, meta, body = r.expect(P.CALL_STREAM)
        self.assertEqual((meta["job"], meta["q"], meta["w"]), (job, {"type": "tokens"}, 256 * 1024))
        self.assertIn(b'"name":"text"', body)
        return sid

    @staticmethod
    def _chunk(text, pad=0):
        return json.dumps({"model_name": "tokens", "outputs": [{"name": "output", "datatype": "BYTES", "shape": [1], "data": [text + "." * pad]}]}).encode()

    def test_call_stream_relays_chunks_credits_what_was_taken_and_cancels_on_break(self):
        r = self.start(handler="stream_caller")
        r.expect(P.READY)
        sid = self._stream_call(r, 3, take=3)
        # ~64 KiB chunks: once half the window is taken (2 of them) → CALL_CREDIT with their bytes.
        sizes = []
        for t in ("a", "b", "c"):
            body = self._chunk(t, 64 * 1024)
            sizes.append(len(body) + 64)
            r.send(P.CALL_CHUNK, sid, None, body)
        _, cid, meta, _ = r.expect(P.CALL_CREDIT)
        self.assertEqual((cid, meta["n"]), (sid, sum(sizes[:2])))
        # It broke out after 3: the replica is told to cancel, then the job answers.
        _, cancel_id, _, _ = r.expect(P.CALL_CANCEL)
        self.assertEqual(cancel_id, sid)
        _, _, _, body = r.expect(P.RESULT)
        self.assertEqual(json.loads(body)["outputs"][0]["data"][0], "abc")

    def test_call_stream_ends_with_call_end_and_raises_its_error_code(self):
        r = self.start(handler="stream_caller")
        r.expect(P.READY)
        sid = self._stream_call(r, 4, take=5)
        r.send(P.CALL_CHUNK, sid, None, self._chunk("a"))
        r.send(P.CALL_END, sid, {"code": "INVALID_PARAMETER", "error": "upstream says no"})
        _, _, meta, _ = r.expect(P.RESULT)
        self.assertEqual((meta["code"], meta["error"]), ("INVALID_PARAMETER", "upstream says no"))

    def test_a_call_stream_left_open_is_cancelled_when_its_job_answers(self):
        r = self.start(handler="stream_caller")
        r.expect(P.READY)
        sid = self._stream_call(r, 5, take=1, leave=1)
        r.send(P.CALL_CHUNK, sid, None, self._chunk("a"))
        r.expect(P.RESULT)
        _, cancel_id, _, _ = r.expect(P.CALL_CANCEL)
        self.assertEqual(cancel_id, sid)

    def _objects(self, handler):
        store = tempfile.mkdtemp(prefix="anyserve-objects-")
        self.addCleanup(shutil.rmtree, store, True)
        r = self.start(handler=handler, ANYSERVE_WORKER_OBJECTS=json.dumps({"dir": store, "owner": {"replicaId": "fake-replica"}}))
        r.expect(P.READY)
        return r

    def test_a_range_of_a_remote_object_is_one_fetch_range_bound_to_the_job(self):
        r = self._objects("far_range")
        r.run(6, "infer", [call()], [json_body(x=1)], h=handler_index("far_range"))
        _, fid, meta, _ = r.expect(P.FETCH)
        self.assertEqual((meta["op"], meta["offset"], meta["length"], meta["job"]), ("range", 10, 5, 6))
        self.assertTrue(meta["ref"].startswith("obj:far-2?"))
        r.send(P.FETCHED, fid, {"id": "far-2", "size": 1000000, "contentType": "application/octet-stream", "created": 1}, b"abcde")
        _, _, meta, body = r.expect(P.RESULT)
        self.assertEqual(json.loads(body)["outputs"][0]["data"][0], "abcde")
        # The replica's error (a bad range) reaches the handler with its code.
        r.run(7, "infer", [call()], [json_body(x=1)], h=handler_index("far_range"))
        _, fid, _, _ = r.expect(P.FETCH)
        r.send(P.FETCHED, fid, {"code": "OBJECT_RANGE_INVALID", "error": "range (offset 10, length 5) is outside object far-2 (12 bytes)"})
        _, _, meta, _ = r.expect(P.RESULT)
        self.assertEqual(meta["code"], "OBJECT_RANGE_INVALID")

    def test_a_remote_object_stream_credits_what_was_taken_and_cancels_when_left(self):
        r = self._objects("far_stream")
        r.run(8, "infer", [call()], [json_body(take=3, offset=4)], h=handler_index("far_stream"))
        _, fid, meta, _ = r.expect(P.FETCH)
        self.assertEqual((meta["op"], meta["offset"], meta["w"], meta["job"]), ("stream", 4, 256 * 1024, 8))
        self.assertNotIn("length", meta)
        info = {"id": "far-2", "size": 1000000, "contentType": "application/octet-stream", "created": 1, "offset": 4, "length": 999996}
        piece = 64 * 1024
        for i, t in enumerate("abc"):
            r.send(P.FETCH_CHUNK, fid, info if i == 0 else None, t.encode() * piece)
        # Half a window taken (2 chunks) → FETCH_CREDIT with their cost; it left after 3 → FETCH_CANCEL.
        _, cid, meta, _ = r.expect(P.FETCH_CREDIT)
        self.assertEqual((cid, meta["n"]), (fid, 2 * (piece + 64)))
        _, cancel_id, _, _ = r.expect(P.FETCH_CANCEL)
        self.assertEqual(cancel_id, fid)
        _, _, _, body = r.expect(P.RESULT)
        self.assertEqual(json.loads(body)["outputs"][0]["data"][0], "a" * piece + "b" * piece + "c" * piece)

    def test_a_remote_object_stream_ends_with_fetch_end_its_error_raised_and_a_left_one_cancelled_at_job_end(self):
        r = self._objects("far_stream")
        r.run(9, "infer", [call()], [json_body(take=5, offset=0)], h=handler_index("far_stream"))
        _, fid, meta, _ = r.expect(P.FETCH)
        self.assertNotIn("offset", meta)  # the whole object
        r.send(P.FETCH_END, fid, {"code": "OBJECT_NOT_FOUND", "error": "owner says: no such object"})
        _, _, meta, _ = r.expect(P.RESULT)
        self.assertEqual(meta["code"], "OBJECT_NOT_FOUND")
        r.run(10, "infer", [call()], [json_body(take=1, offset=1, leave=1)], h=handler_index("far_stream"))
        _, fid, _, _ = r.expect(P.FETCH)
        r.send(P.FETCH_CHUNK, fid, {"id": "far-2", "size": 1000000, "offset": 1, "length": 999999}, b"x")
        r.expect(P.RESULT)
        _, cancel_id, _, _ = r.expect(P.FETCH_CANCEL)
        self.assertEqual(cancel_id, fid)

    def test_an_async_handler_streams_a_remote_object_bound_to_its_job_and_closes_it(self):
        r = self._objects("far_astream")
        r.run(11, "infer", [call()], [json_body(take=2)], h=handler_index("far_astream"))
        _, fid, meta, _ = r.expect(P.FETCH)
        self.assertEqual((meta["op"], meta["job"]), ("stream", 11))
        r.send(P.FETCH_CHUNK, fid, {"id": "far-2", "size": 1000000, "offset": 0, "length": 1000000}, b"ab")
        r.send(P.FETCH_CHUNK, fid, None, b"cd")
        _, cancel_id, _, _ = r.expect(P.FETCH_CANCEL)
        self.assertEqual(cancel_id, fid)
        _, _, _, body = r.expect(P.RESULT)
        self.assertEqual(json.loads(body)["outputs"][0]["data"][0], "abcd")

    def test_async_concurrency_runs_jobs_side_by_side_and_answers_out_of_order(self):
        r = self.start(concurrency=4, handler="asleep")
        r.expect(P.READY)
        t0 = time.time()
        r.run(1, "infer", [call()], [json_body(s=0.4)], h=handler_index("asleep"))
        for i in range(2, 5):
            r.run(i, "infer", [call()], [json_body(s=0.05)], h=handler_index("asleep"))
        order = [r.expect(P.RESULT)[1] for _ in range(4)]
        self.assertEqual(order[-1], 1)
        self.assertLess(time.time() - t0, 1.0)

    def test_a_module_that_fails_to_import_says_so_in_boot_failed_and_exits(self):
        r = self.start(handler="echo", app=os.path.join(HERE, "apps", "broken_app.py:app"))
        _, _, meta, _ = r.expect(P.BOOT_FAILED)
        self.assertEqual(meta["code"], "CAPABILITY_FAILED")
        self.assertIn("RuntimeError: weights not found at /models/x", meta["error"])
        self.assertEqual(r.proc.wait(timeout=10), 1)

    def test_out_of_memory_ends_the_process_with_its_exit_code(self):
        r = self.start(handler="hog", ANYSERVE_WORKER_MEMORY_MB="64")
        r.expect(P.READY)
        r.run(1, "infer", [call()], [json_body(x=1)], h=handler_index("hog"))
        self.assertEqual(r.proc.wait(timeout=30), P.OOM_EXIT_CODE)
        self.assertEqual(r.next()[0], -1, "no answer: the replica fails the running request by the exit code")


if __name__ == "__main__":
    unittest.main()
