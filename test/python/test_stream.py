"""Stream: FIFO, close, send after close, error after data, iteration, another thread's order, any value (seed-tests: Stream)."""
import threading
import unittest

import fake_replica  # noqa: F401
from anyserve import Stream


class StreamTest(unittest.TestCase):
    def test_fifo_then_close(self):
        s = Stream()
        self.assertFalse(s.closed)
        for i in range(3):
            s.send(i)
        s.close()
        self.assertTrue(s.closed)
        self.assertEqual(list(s), [0, 1, 2])

    def test_send_after_close_raises(self):
        s = Stream()
        s.close()
        with self.assertRaises(RuntimeError):
            s.send("late")

    def test_error_is_received_after_the_data_sent_before_it(self):
        s = Stream()
        s.send("a")
        s.error("model crashed")
        self.assertTrue(s.closed)
        self.assertEqual(list(s), ["a", {"error_message": "model crashed"}])

    def test_a_producer_thread_keeps_order_and_any_value_passes(self):
        s = Stream()
        values = [1, "two", {"three": [3]}, None, b"five", 6.5]

        def produce():
            for v in values:
                s.send(v)
            s.close()

        threading.Thread(target=produce).start()
        self.assertEqual(list(s), values)

    def test_a_sink_receives_items_as_they_are_sent(self):
        got = []
        s = Stream(got.append)
        s.send("x")
        self.assertEqual(got, ["x"])


if __name__ == "__main__":
    unittest.main()
