"""The app: registration, arity, model(), lookups, streams and non-streams side by side (seed-tests: App)."""
import unittest

import fake_replica  # noqa: F401
from anyserve import AnyServe, Worker


class AppTest(unittest.TestCase):
    def test_a_registered_handler_is_stored_with_capability_arity_and_stream_flag_and_returned_unchanged(self):
        app = AnyServe()

        def one(request):
            return 1

        def two(request, context):
            return 2

        self.assertIs(app.capability(type="a")(one), one)
        self.assertIs(app.capability(type="b")(two), two)
        a, b = app.handlers
        self.assertEqual(a.capability.to_dict(), {"type": "a"})
        self.assertFalse(a.uses_context)
        self.assertTrue(b.uses_context)
        self.assertFalse(a.is_stream)
        self.assertIs(a.fn, one)

    def test_model_registers_model_and_version(self):
        app = AnyServe()
        app.model("llama")(lambda r: r)
        app.model("llama", version="2")(lambda r: r)
        self.assertEqual(app.get_capabilities(), [{"model": "llama"}, {"model": "llama", "version": "2"}])

    def test_get_capabilities_empty_then_one_per_handler(self):
        app = AnyServe()
        self.assertEqual(app.get_capabilities(), [])
        app.capability(type="chat", model="a")(lambda r: r)
        app.capability(type="chat", model="b")(lambda r: r)
        self.assertEqual(app.get_capabilities(), [{"type": "chat", "model": "a"}, {"type": "chat", "model": "b"}])

    def test_find_handler_exact_subset_none_first_match_wins(self):
        app = AnyServe()

        def first(r):
            return "first"

        def second(r):
            return "second"

        app.capability(type="chat", model="a")(first)
        app.capability(type="chat", model="b")(second)
        self.assertIs(app.find_handler({"type": "chat", "model": "b"}).fn, second)
        self.assertIs(app.find_handler({"type": "chat"}).fn, first)
        self.assertIsNone(app.find_handler({"type": "embed"}))
        handler, uses_context = app.find_handler({"type": "chat"})
        self.assertIs(handler, first)
        self.assertFalse(uses_context)

    def test_stream_and_plain_handlers_coexist(self):
        app = AnyServe()

        def plain(r, c):
            return "plain"

        def streamed(r, c, s):
            s.close()

        def generated(r):
            yield "x"

        app.capability(type="chat", stream=True)(streamed)
        app.capability(type="chat")(plain)
        app.capability(type="gen")(generated)
        self.assertIs(app.find_handler({"type": "chat"}).fn, plain)  # skips the stream handler
        self.assertIs(app.find_stream_handler({"type": "chat"}).fn, streamed)
        any_ = app.find_any_handler({"type": "chat"})
        self.assertTrue(any_.is_stream)
        self.assertTrue(any_.takes_stream)
        self.assertIsNone(app.find_stream_handler({"type": "embed"}))
        self.assertTrue(app.find_any_handler({"type": "gen"}).is_stream)  # a generator streams

    def test_batch_and_stream_cannot_combine_and_options_are_described(self):
        app = AnyServe()
        with self.assertRaises(TypeError):
            app.capability(type="x", stream=True, batch=True)(lambda rs, cs: rs)
        app.capability(type="e", batch=True, lazy=True, example={"text": "hi"})(lambda rs, cs: rs)
        self.assertEqual(
            app.describe(),
            [{"capability": {"type": "e"}, "stream": False, "batch": True, "lazy": True, "unit": 0, "example": {"text": "hi"}}],
        )

    def test_a_worker_class_starts_per_process_and_binds_its_handle(self):
        app = AnyServe()
        seen = []

        @app.worker(type="heavy", lazy=True)
        class Heavy(Worker):
            def on_start(self):
                seen.append("start")
                self.model = "weights"

            def on_stop(self):
                seen.append("stop")

            def handle(self, request, context):
                return self.model

        entry = app.handlers[0]
        self.assertTrue(entry.lazy)
        self.assertIsNone(entry.fn)  # bound when its worker starts
        from anyserve import WorkerInfo

        entry.start_hook(WorkerInfo({"type": "heavy"}, "r", "python-1"))
        self.assertEqual(entry.fn(None, None), "weights")
        entry.stop_hook(WorkerInfo({"type": "heavy"}, "r", "python-1"))
        self.assertEqual(seen, ["start", "stop"])


if __name__ == "__main__":
    unittest.main()


class LoaderTest(unittest.TestCase):
    def test_load_app_finds_the_app_a_class_or_the_module_level_decorators_with_a_did_you_mean(self):
        import os
        import tempfile

        from anyserve.loader import AppLoadError, load_app

        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "plain_app.py"), "w") as f:
                f.write("from anyserve import AnyServe\napp = AnyServe()\napp.capability(type='x')(lambda r: 1)\n")
            with open(os.path.join(d, "svc_mod.py"), "w") as f:
                f.write("class KV:\n    def get(self, k):\n        return k\n")
            with open(os.path.join(d, "deco_app.py"), "w") as f:
                f.write("import anyserve\n@anyserve.model('m')\ndef m(r):\n    return 1\n")
            self.assertEqual(load_app(os.path.join(d, "plain_app.py")).get_capabilities(), [{"type": "x"}])
            self.assertEqual(load_app(os.path.join(d, "svc_mod.py:KV"), service="kv").get_capabilities(), [{"service": "kv", "method": "get"}])
            self.assertEqual(load_app(os.path.join(d, "deco_app.py")).get_capabilities(), [{"model": "m"}])
            with self.assertRaises(AppLoadError) as c:
                load_app(os.path.join(d, "svc_mod.py:Kv"))
            self.assertEqual(c.exception.kind, "no_export")
            self.assertIn("did you mean 'KV'?", str(c.exception))
            with self.assertRaises(AppLoadError) as c:
                load_app(os.path.join(d, "missing.py:app"))
            self.assertEqual(c.exception.kind, "not_found")
