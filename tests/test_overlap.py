"""Background reading and writing (anomaly.overlap): order, bounds, errors, early stops."""

from __future__ import annotations

import threading
import time

import pytest

from anomaly.overlap import BackgroundWriter, Prefetch


def test_prefetch_keeps_order_and_runs_in_another_thread():
    threads = set()

    def items():
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    with Prefetch(items(), depth=3, name="reader") as prefetched:
        assert list(prefetched) == list(range(50))
    assert threads == {"reader"}


def test_prefetch_reads_at_most_depth_ahead():
    produced = []

    def items():
        for i in range(100):
            produced.append(i)
            yield i

    with Prefetch(items(), depth=2) as prefetched:
        assert next(prefetched) == 0
        time.sleep(0.2)
        # 1 consumed + 2 queued + 1 produced and waiting for room in the queue
        assert len(produced) <= 4


def test_prefetch_raises_the_producers_error_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("bad row 3")

    got = []
    with Prefetch(items()) as prefetched:
        with pytest.raises(ValueError, match="bad row 3"):
            for item in prefetched:
                got.append(item)
    assert got == [1, 2]


def test_prefetch_stopped_early_closes_the_generator_in_its_thread():
    closed = threading.Event()

    def items():
        try:
            yield from range(1_000_000)
        finally:
            closed.set()

    prefetched = Prefetch(items(), depth=2)
    assert next(prefetched) == 0
    prefetched.close()
    assert closed.is_set()
    assert not prefetched._thread.is_alive()
    with pytest.raises(StopIteration):
        next(prefetched)


def test_prefetch_close_does_not_hang_on_a_producer_blocked_on_its_input():
    """A live feed with nothing arriving: an error in the consumer must still end the pass."""
    never = threading.Event()

    def items():
        yield 0
        never.wait()  # like a read from an idle stdin
        yield 1

    prefetched = Prefetch(items(), depth=2)
    assert next(prefetched) == 0
    # close() must return although the producer never yields again (a hang, not a speed, is
    # what this checks: the join's 30 s only bounds a failing run).
    closer = threading.Thread(target=prefetched.close, kwargs={"timeout": 0.3})
    closer.start()
    closer.join(30)
    assert not closer.is_alive()
    assert prefetched._thread.daemon
    never.set()


def test_writer_writes_in_order_in_one_thread():
    written, threads = [], set()

    def write(item):
        threads.add(threading.current_thread().name)
        time.sleep(0.001 * (item % 3))  # uneven work must not reorder
        written.append(item)

    with BackgroundWriter(write, depth=2) as writer:
        for i in range(30):
            writer.submit(i)
        writer.flush()
    assert written == list(range(30))
    assert len(threads) == 1 and threading.current_thread().name not in threads


def test_writer_raises_a_failed_write_and_writes_nothing_after_it():
    written = []

    def write(item):
        if item == 3:
            raise OSError("disk full")
        written.append(item)

    writer = BackgroundWriter(write, depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(10):
            writer.submit(i)
        writer.flush()
    writer.close()
    assert written == [0, 1, 2]


def test_writer_bounds_the_items_in_flight():
    release = threading.Event()
    started = []

    def write(item):
        started.append(item)
        release.wait(5)

    writer = BackgroundWriter(write, depth=2)
    writer.submit(0)
    writer.submit(1)
    blocked = threading.Thread(target=writer.submit, args=(2,))
    blocked.start()
    time.sleep(0.1)
    assert blocked.is_alive()  # two in flight: the third submit waits
    release.set()
    blocked.join(5)
    writer.flush()
    writer.close()
    assert started == [0, 1, 2]


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        Prefetch([], depth=0)
    with pytest.raises(ValueError, match="depth"):
        BackgroundWriter(print, depth=0)
