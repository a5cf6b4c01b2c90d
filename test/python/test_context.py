"""Context: objects round trip, errors without a store or a router, call forwarding, attributes (seed-tests: Context)."""
import tempfile
import threading
import time
import unittest

import fake_replica  # noqa: F401
from anyserve import AnyServeError, Cancellation, Context, ObjectStore


class ContextTest(unittest.TestCase):
    def test_objects_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            ctx = Context(objects=ObjectStore(d))
            ref = ctx.objects.create({"a": 1})
            self.assertEqual(ctx.objects.get(ref), {"a": 1})

    def test_no_store_and_no_router_are_errors_saying_so(self):
        ctx = Context()
        with self.assertRaisesRegex(RuntimeError, "ObjectStore not available"):
            ctx.objects
        with self.assertRaisesRegex(RuntimeError, "cross-replica call not available"):
            ctx.call({"type": "embed"}, {"text": "x"})

    def test_call_forwards_capability_inputs_and_options_and_returns_the_result(self):
        seen = []

        def call(capability, inputs, **kw):
            seen.append((capability, inputs, kw))
            return {"ok": True}

        ctx = Context(call_func=call)
        self.assertEqual(ctx.call({"type": "embed"}, {"text": "x"}, timeout=2), {"ok": True})
        self.assertEqual(seen, [({"type": "embed"}, {"text": "x"}, {"timeout": 2})])

    def test_call_service_sends_args_as_json_and_unwraps_the_result(self):
        seen = []

        def call(capability, inputs, **kw):
            seen.append((capability, inputs))
            return {"result": "v"}

        self.assertEqual(Context(call_func=call).call_service("kv").get("k"), "v")
        self.assertEqual(seen, [({"service": "kv", "method": "get"}, {"args": '["k"]'})])

    def test_attributes(self):
        ctx = Context(replica_id="replica-a", capability={"type": "chat"}, request_id="r1", deadline=time.time() + 5)
        self.assertEqual(ctx.replica_id, "replica-a")
        self.assertEqual(ctx.capability.to_dict(), {"type": "chat"})
        self.assertEqual(ctx.request_id, "r1")
        self.assertTrue(0 < ctx.remaining <= 5)

    def test_cancellation_wakes_a_sleeping_handler_at_once(self):
        cancel = Cancellation()
        ctx = Context(cancellation=cancel)
        threading.Timer(0.05, lambda: cancel.cancel(AnyServeError("DEADLINE_EXCEEDED", "late"))).start()
        t0 = time.time()
        with self.assertRaises(AnyServeError) as c:
            ctx.sleep(30)
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(c.exception.code, "DEADLINE_EXCEEDED")
        self.assertTrue(ctx.cancelled)


if __name__ == "__main__":
    unittest.main()
