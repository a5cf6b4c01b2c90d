"""The object store (seed-tests: Object store), on the TypeScript store's directory format."""
import json
import os
import tempfile
import threading
import time
import unittest

import fake_replica  # noqa: F401
from anyserve import AnyServeError, ObjectStore, ObjRef


class ObjectStoreTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.store = ObjectStore(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_bytes_are_a_binary_object_and_values_json_objects(self):
        ref = self.store.create(b"\x00\x01binary")
        self.assertEqual(ref.size, 8)
        self.assertEqual(ref.content_type, "application/octet-stream")
        self.assertEqual(self.store.get(ref), b"\x00\x01binary")
        for value in ({"a": [1, 2]}, [1, "two"], "text", 42, 1.5, True, None):
            r = self.store.create(value)
            self.assertEqual(r.content_type, "application/json")
            self.assertEqual(self.store.get(r), value)

    def test_a_custom_key_is_the_id_in_the_ref(self):
        ref = self.store.create({"x": 1}, key="my-key_1")
        self.assertEqual(ref.key, "my-key_1")
        self.assertTrue(str(ref).startswith("obj:my-key_1?size="))
        with self.assertRaises(AnyServeError) as c:
            self.store.create(b"x", key="../escape")
        self.assertEqual(c.exception.code, "OBJECT_REF_INVALID")

    def test_get_by_ref_string_dict_json_and_path_missing_is_not_found(self):
        ref = self.store.create({"k": "v"})
        self.assertEqual(self.store.get(ref.to_string()), {"k": "v"})
        self.assertEqual(self.store.get(ref.to_dict()), {"k": "v"})
        self.assertEqual(self.store.get(json.dumps(ref.to_dict())), {"k": "v"})
        self.assertEqual(self.store.get(ref.path), {"k": "v"})
        self.assertEqual(self.store.get(ref.key), {"k": "v"})
        with self.assertRaises(FileNotFoundError) as c:
            self.store.get("obj:obj-missing?size=1&type=application%2Fjson")
        self.assertEqual(c.exception.code, "OBJECT_NOT_FOUND")
        with self.assertRaises(AnyServeError) as c:
            self.store.get("/etc/passwd")
        self.assertEqual(c.exception.code, "OBJECT_REF_INVALID")

    def test_delete_then_exists(self):
        ref = self.store.create(b"x")
        self.assertTrue(self.store.exists(ref))
        self.assertTrue(self.store.delete(ref))
        self.assertFalse(self.store.delete(ref))
        self.assertFalse(self.store.exists(ref))

    def test_list_cleanup_and_clear(self):
        refs = [self.store.create(i) for i in range(3)]
        self.assertEqual(sorted(r.id for r in self.store.list_objects()), sorted(r.id for r in refs))
        time.sleep(0.01)
        self.assertEqual(self.store.cleanup(max_age_seconds=0), 3)
        self.assertEqual(self.store.list_objects(), [])
        for i in range(2):
            self.store.create(i)
        self.assertEqual(self.store.clear(), 2)

    def test_large_lists_unicode_and_concurrent_creates(self):
        big = list(range(100_000))
        self.assertEqual(self.store.get(self.store.create(big)), big)
        text = "héllo wörld — 你好 🌍"
        self.assertEqual(self.store.get(self.store.create(text)), text)
        refs = []
        lock = threading.Lock()

        def make(i):
            r = self.store.create({"i": i})
            with lock:
                refs.append(r)

        threads = [threading.Thread(target=make, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len({r.key for r in refs}), 20)

    def test_a_second_store_on_the_same_directory_reads_a_ref(self):
        ref = self.store.create({"shared": True})
        self.assertEqual(ObjectStore(self.tmp.name).get(ref.to_string()), {"shared": True})

    def test_objref_round_trips_and_reads(self):
        ref = ObjRef("obj-1", 18, "application/json", owner="replica-a", url="http://127.0.0.1:8080")
        self.assertEqual(ObjRef.from_string(ref.to_string()), ref)
        self.assertEqual(ObjRef.from_dict(ref.to_dict()), ref)
        self.assertEqual(ref.to_string(), "obj:obj-1?size=18&type=application%2Fjson&owner=replica-a&url=http%3A%2F%2F127.0.0.1%3A8080")
        self.assertIn("obj-1", repr(ref))
        self.assertIn("18 B", repr(ref))
        self.assertIn("application/json", repr(ref))
        for bad in ("obj:../x?size=1&type=a%2Fb", "obj:x?size=1", "obj:x?size=1&type=a%2Fb&evil=1", "nope:x"):
            with self.assertRaises(AnyServeError, msg=bad) as c:
                ObjRef.from_string(bad)
            self.assertEqual(c.exception.code, "OBJECT_REF_INVALID")

    def test_refs_of_this_replica_name_it_and_expired_objects_are_gone(self):
        store = ObjectStore(self.tmp.name, owner={"replicaId": "replica-a", "url": "http://127.0.0.1:9"})
        ref = store.create(b"x", ttl=0.05)
        self.assertEqual((ref.owner, ref.url), ("replica-a", "http://127.0.0.1:9"))
        time.sleep(0.1)
        with self.assertRaises(AnyServeError) as c:
            store.get(ref)
        self.assertEqual(c.exception.code, "OBJECT_EXPIRED")
        self.assertFalse(store.exists(ref))

    def test_another_replicas_object_goes_through_the_fetcher_and_never_a_symlink(self):
        asked = []
        store = ObjectStore(self.tmp.name, owner={"replicaId": "me"}, fetcher=lambda ref, op: (asked.append((ref, op)) or ({"contentType": "application/json"}, b"[1]")))
        self.assertEqual(store.get("obj:far-1?size=3&type=application%2Fjson&owner=other&url=http%3A%2F%2Fh%3A1"), [1])
        self.assertEqual(asked[0][1], "get")
        os.symlink("/etc/hostname", os.path.join(self.tmp.name, "link.obj"))
        with self.assertRaises(AnyServeError):
            store.get("link")

    def test_a_range_and_a_stream_read_only_their_bytes_and_bad_ranges_name_offset_length_and_size(self):
        data = bytes(range(256)) * 40  # 10240 bytes
        ref = self.store.create(data)
        self.assertEqual(self.store.get_range(ref, 0, 1), data[:1])
        self.assertEqual(self.store.get_range(ref, 300, 1000), data[300:1300])
        self.assertEqual(self.store.get_range(str(ref), 10239, 1), data[-1:])
        with self.store.open_stream(ref, chunk_size=1000) as s:
            chunks = list(s)
        self.assertEqual((len(chunks), b"".join(chunks)), (11, data))
        self.assertEqual(b"".join(self.store.open_stream(ref, offset=5000, length=2500, chunk_size=999)), data[5000:7500])
        self.assertEqual(b"".join(self.store.open_stream(ref, offset=10000)), data[10000:])
        self.assertEqual(list(self.store.open_stream(self.store.create(b""))), [])
        # The TypeScript store's message (objects/info.ts), word for word.
        for offset, length in ((10240, 1), (0, 0), (-1, 3), (1, 10240)):
            with self.assertRaises(AnyServeError) as c:
                self.store.get_range(ref, offset, length)
            self.assertEqual(c.exception.code, "OBJECT_RANGE_INVALID")
            self.assertEqual(
                c.exception.message,
                f"range (offset {offset}, length {length}) is outside object {ref.id} (10240 bytes): expected offset >= 0, length >= 1 and offset + length <= 10240",
            )
            with self.assertRaises(AnyServeError) as c:
                self.store.open_stream(ref, offset=offset, length=length)
            self.assertEqual(c.exception.code, "OBJECT_RANGE_INVALID")
        with self.assertRaises(AnyServeError) as c:
            self.store.get_range(ref, "0", 1)
        self.assertEqual(c.exception.code, "OBJECT_RANGE_INVALID")

    def test_an_async_handler_streams_an_object_without_holding_the_loop(self):
        import asyncio

        data = bytes(range(256)) * 40
        ref = self.store.create(data)

        async def read(**kw):
            got = []
            async with self.store.aopen_stream(ref, chunk_size=4096, **kw) as s:
                async for chunk in s:
                    got.append(chunk)
            return b"".join(got), len(got)

        self.assertEqual(asyncio.run(read()), (data, 3))
        self.assertEqual(asyncio.run(read(offset=100, length=50))[0], data[100:150])
        with self.assertRaises(AnyServeError) as c:
            asyncio.run(read(offset=10240))
        self.assertEqual(c.exception.code, "OBJECT_RANGE_INVALID")

    def test_refused_values(self):
        with self.assertRaises(AnyServeError) as c:
            self.store.create(object())
        self.assertEqual(c.exception.code, "INVALID_PARAMETER")


if __name__ == "__main__":
    unittest.main()
