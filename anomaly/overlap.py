"""Run reading and writing beside the scoring, in background threads.

Scoring a file is read → score → write, chunk after chunk. The forward pass keeps every core
busy, but the numpy work around it (scaling, packing blocks, normalising) runs on one core,
and while it does, the other cores idle; reading the next chunk (pyarrow's parsing) and writing
the last one (pyarrow's encoding) release the GIL, so they can run in those gaps.

:class:`Prefetch` reads up to ``depth`` chunks ahead; :class:`BackgroundWriter` writes up to
``depth`` chunks behind. Both keep the order of the chunks, hold at most ``depth`` of them (the
memory bound of streaming stays), and raise a worker's exception in the calling thread, at the
next call, as if the work had been done there.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()
# How often a blocked producer checks whether it was told to stop, in seconds.
_POLL_SECONDS = 0.05


class _Failure:
    """An exception raised by the producer, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """Iterate over ``items`` in a background thread, up to ``depth`` items ahead of the caller.

    Parameters
    ----------
    items : iterable
        Consumed in the background thread only.
    depth : int >= 1
        Items read ahead at most.
    name : str
        The thread's name.

    Notes
    -----
    Use it as a context manager, or call :meth:`close`: a consumer that stops early must stop
    the producer. An exception raised by ``items`` is raised by ``next()`` in the caller's
    thread, after the items that came before it.

    Examples
    --------
    >>> with Prefetch(range(3)) as items:
    ...     list(items)
    [0, 1, 2]
    """

    def __init__(self, items: Iterable[T], depth: int = 2, name: str = "anomaly-prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1; got {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, args=(iter(items),), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless told to stop first. Returns whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as error:  # carried to the consumer, raised there
            self._put(_Failure(error))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None and self._stop.is_set():
                close()  # a generator stopped early: run its cleanup here, in its own thread
        self._put(_DONE)

    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self._finished = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._finished = True
            raise item.error
        return item  # type: ignore[return-value]

    def close(self, timeout: float = 5.0) -> None:
        """Stop the producer; wait up to ``timeout`` s for it to finish the item it is reading.

        A producer blocked on a live input (standard input with nothing arriving) cannot be
        interrupted: after ``timeout`` it is left behind, a daemon thread that ends with the
        process, so an error in the consumer is reported at once rather than when input comes.
        """
        self._stop.set()
        self._finished = True
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:  # unblock a producer waiting on a full queue
                self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                pass

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundWriter(Generic[T]):
    """Call ``write(item)`` for each submitted item in one background thread, in order.

    Parameters
    ----------
    write : callable
        Called with each item, in submission order, never concurrently.
    depth : int >= 1
        Items submitted but not yet written at most; :meth:`submit` waits beyond it.

    Notes
    -----
    A failed ``write`` is raised by the next :meth:`submit` or by :meth:`flush`; nothing
    submitted after a failure is written.
    """

    def __init__(self, write: Callable[[T], None], depth: int = 2, name: str = "anomaly-write") -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1; got {depth}")
        self._write = write
        self._depth = depth
        self._pending: list[Future] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._failed = False

    def submit(self, item: T) -> None:
        """Queue ``item`` for writing; raise the error of an earlier write, if one failed."""
        self._collect(block=len(self._pending) >= self._depth)
        self._pending.append(self._executor.submit(self._guarded, item))

    def _guarded(self, item: T) -> None:
        if not self._failed:  # after a failure, later items are dropped, not written out of sequence
            try:
                self._write(item)
            except BaseException:
                self._failed = True
                raise

    def _collect(self, block: bool) -> None:
        """Drop finished writes (waiting for the oldest if ``block``); raise the first failure."""
        while self._pending and (block or self._pending[0].done()):
            self._pending.pop(0).result()  # raises the write's exception
            block = False

    def flush(self) -> None:
        """Wait until everything submitted is written; raise the first failure."""
        try:
            while self._pending:
                self._pending.pop(0).result()
        finally:
            self._pending.clear()

    def close(self) -> None:
        """Wait for the writes in flight (their errors are not raised) and stop the thread."""
        self._executor.shutdown(wait=True)
        self._pending.clear()

    def __enter__(self) -> BackgroundWriter[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
