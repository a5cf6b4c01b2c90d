"""Capability: construction, get with defaults, matching, to_dict copies, readable forms (seed-tests: Capability)."""
import unittest

import fake_replica  # noqa: F401  (puts the SDK on sys.path)
from anyserve import AnyServeError, Capability


class CapabilityTest(unittest.TestCase):
    def test_construction_and_get_with_defaults(self):
        cap = Capability(type="chat", model="llama-70b")
        self.assertEqual(cap.get("type"), "chat")
        self.assertIsNone(cap.get("gpus"))
        self.assertEqual(cap.get("gpus", "0"), "0")
        self.assertEqual(Capability({"type": "embed"}, model="m").to_dict(), {"type": "embed", "model": "m"})

    def test_matching(self):
        cap = Capability(type="chat", model="llama-70b", gpus=2)
        self.assertTrue(cap.matches({"type": "chat", "model": "llama-70b"}))  # exact
        self.assertTrue(cap.matches({"type": "chat"}))  # subset
        self.assertFalse(cap.matches({"type": "embed"}))  # wrong value
        self.assertFalse(cap.matches({"region": "eu"}))  # missing key
        self.assertTrue(cap.matches({}))  # empty query matches all
        self.assertTrue(cap.matches({"gpus": 2}))  # values compare as strings, like the router
        self.assertTrue(Capability(ok=True).matches({"ok": "true"}))

    def test_to_dict_is_a_copy_and_forms_are_readable(self):
        cap = Capability(type="chat", model="m")
        d = cap.to_dict()
        d["type"] = "changed"
        self.assertEqual(cap["type"], "chat")
        self.assertEqual(repr(cap), "Capability(type=chat, model=m)")
        self.assertEqual(str(cap), "type=chat,model=m")
        self.assertEqual(Capability.from_dict({"type": "chat", "model": "m"}), cap)
        self.assertEqual(hash(Capability(type="chat", model="m")), hash(cap))

    def test_bad_keys_and_values_are_refused_with_the_routers_code(self):
        with self.assertRaises(AnyServeError) as c:
            Capability({"bad key": "x"})
        self.assertEqual(c.exception.code, "INVALID_CAPABILITY")
        with self.assertRaises(AnyServeError):
            Capability(type=["a"])


if __name__ == "__main__":
    unittest.main()
