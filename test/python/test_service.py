"""SAGE's service task (seed-tests: SAGE service task) and class services as apps."""
import asyncio
import queue
import threading
import unittest

import fake_replica  # noqa: F401
from anyserve import LocalServices, Service, ServiceContext, ServiceTask
from anyserve.service import service_app, service_methods


class Counter(Service):
    def __init__(self, start=0):
        self.n = start
        self.events = []

    def setup(self):
        self.events.append(("setup", self.ctx.service_name))

    def cleanup(self):
        self.events.append("cleanup")

    def add(self, k=1):
        self.n += k
        return self.n

    def fail(self):
        raise ValueError("no such thing")

    def _private(self):
        return "hidden"


class ServiceTaskTest(unittest.TestCase):
    def test_a_task_needs_a_context_and_setup_runs_with_it_injected(self):
        task = ServiceTask(Counter, "counter")
        with self.assertRaisesRegex(RuntimeError, "needs a context"):
            task.start()
        task.set_context(ServiceContext("counter"))
        task.start()
        self.assertEqual(task.service.events, [("setup", "counter")])
        task.stop()

    def test_start_and_stop_are_idempotent(self):
        task = ServiceTask(Counter, "counter", ServiceContext("counter"))
        task.start()
        task.start()
        self.assertTrue(task.is_running)
        task.stop()
        task.stop()
        self.assertFalse(task.is_running)

    def test_call_success_failure_and_missing_method(self):
        with ServiceTask(Counter, "counter", ServiceContext("counter")) as task:
            self.assertEqual(task.call("add", 2), {"success": True, "result": 2})
            failed = task.call("fail")
            self.assertFalse(failed["success"])
            self.assertIn("no such thing", failed["error"])
            missing = task.call("nope")
            self.assertFalse(missing["success"])
            self.assertIn("'nope'", missing["error"])
            self.assertFalse(task.call("_private")["success"])

    def test_queued_requests_are_processed_and_answered(self):
        with ServiceTask(Counter, "counter", ServiceContext("counter")) as task:
            answers = queue.Queue()
            task.put({"request_id": "r1", "method": "add", "args": [5], "response_queue": answers})
            task.put({"request_id": "r2", "method": "fail", "response_queue": answers})
            a, b = answers.get(timeout=5), answers.get(timeout=5)
            self.assertEqual(a, {"success": True, "result": 5, "request_id": "r1"})
            self.assertEqual((b["success"], b["request_id"]), (False, "r2"))

    def test_statistics_after_calls(self):
        with ServiceTask(Counter, "counter", ServiceContext("counter")) as task:
            for _ in range(3):
                task.call("add")
            task.call("fail")
            stats = task.get_statistics()
            self.assertEqual(stats["service_name"], "counter")
            self.assertEqual(stats["service_type"], "Counter")
            self.assertTrue(stats["is_running"])
            self.assertEqual(stats["request_count"], 4)
            self.assertEqual(stats["error_count"], 1)
            self.assertIsNotNone(stats["last_activity_time"])

    def test_cleanup_calls_the_services_cleanup(self):
        task = ServiceTask(Counter, "counter", ServiceContext("counter")).start()
        task.cleanup()
        self.assertIn("cleanup", task.service.events)
        self.assertFalse(task.is_running)

    def test_concurrent_calls_are_all_answered(self):
        with ServiceTask(Counter, "counter", ServiceContext("counter")) as task:
            futures = [task.put({"method": "add"}) for _ in range(50)]
            threads = [threading.Thread(target=task.call, args=("add",)) for _ in range(50)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertTrue(all(f.result(timeout=5)["success"] for f in futures))
            self.assertEqual(task.service.n, 100)

    def test_three_services_call_each_other_synchronously_and_asynchronously(self):
        class C(Service):
            def shout(self, text):
                return text.upper()

        class B(Service):
            def relay(self, text):
                return self.ctx.call_service("c").shout(text) + "!"

        class A(Service):
            def run(self, text):
                return "A:" + self.ctx.call_service("b").relay(text)

            def run_async(self, text):
                async def go():
                    return await asyncio.wrap_future(self.ctx.call_service_async("b").relay(text))

                return asyncio.run(go())

        services = LocalServices()
        for name, cls in (("a", A), ("b", B), ("c", C)):
            services.register(name, cls)
        services.start_all()
        try:
            self.assertEqual(services.call("a", "run", "hi"), "A:HI!")
            self.assertEqual(services.call("a", "run_async", "yo"), "YO!")
        finally:
            services.stop_all()


class ServiceAppTest(unittest.TestCase):
    def test_methods_become_service_method_capabilities_process_first_hooks_and_privates_excluded(self):
        class Worker(Service):
            def helper(self):
                return 1

            def process(self, x):
                return x

            def stop(self):
                pass

        self.assertEqual(service_methods(Worker), ["process", "helper"])
        app = service_app("w", Worker)
        self.assertEqual(app.get_capabilities(), [{"service": "w", "method": "process"}, {"service": "w", "method": "helper"}])
        self.assertEqual(app.find_handler({"service": "w"}).capability.get("method"), "process")  # the default method
        self.assertEqual({h.unit for h in app.handlers}, {0})  # one instance serves every method

    def test_the_class_affinity_is_reported_to_the_replica_and_checked(self):
        class Keyed(Service):
            def get(self, key):
                return key

        class One(Keyed):
            affinity = "instance"

        class Wrong(Keyed):
            affinity = "sticky"

        self.assertEqual(service_app("kv", Keyed).service, {"name": "kv", "class": "Keyed", "affinity": "key"})
        self.assertEqual(service_app("one", One).service["affinity"], "instance")
        with self.assertRaisesRegex(TypeError, r"service class Wrong: affinity must be one of key, instance, none, got 'sticky'"):
            service_app("w", Wrong)


if __name__ == "__main__":
    unittest.main()
