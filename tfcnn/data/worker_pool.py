"""An ordered, bounded, crash-tolerant map over worker processes.

``map_in_order(function, chunks, workers=..., on_crash=...)`` runs
``function(chunk)`` (which returns one result per item) in spawned worker
processes and yields the items' results in input order, with at most
``workers * inflight_per_worker`` chunks submitted at a time, so memory
stays flat however many chunks there are.

A decoder can do worse than raise: a malformed file can crash the native
code that reads it or exhaust memory, killing its worker process and
breaking the whole pool. Then the pool is restarted, the chunk that was
running is redone one item per task to find the culprit, and an item whose
task kills a worker again gets ``on_crash(item)`` as its result. One bad
file costs a restart; it never ends the map.

Workers are spawned, not forked: the calling process usually runs
TensorFlow's threads, and a forked child of a multithreaded process can
deadlock.
"""

import collections
import concurrent.futures
import multiprocessing
from concurrent.futures.process import BrokenProcessPool


class _Pool:
    """A ``ProcessPoolExecutor`` that can be replaced after a crash."""

    def __init__(self, workers):
        self._workers = workers
        self._executor = self._start()
        self.restarts = 0

    def _start(self):
        return concurrent.futures.ProcessPoolExecutor(
            self._workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, function, chunk):
        """A future of ``function(chunk)``; already failed with
        ``BrokenProcessPool`` when the pool broke before the submission."""
        try:
            return self._executor.submit(function, chunk)
        except BrokenProcessPool as error:
            future = concurrent.futures.Future()
            future.set_exception(error)
            return future

    def restart(self):
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._start()
        self.restarts += 1

    def close(self):
        self._executor.shutdown(wait=True, cancel_futures=True)


def map_in_order(function, chunks, *, workers, on_crash,
                 inflight_per_worker=4):
    """Yields ``function(chunk)``'s results item by item, in order.

    Args:
        function: picklable callable ``list -> list`` (one result per
            item), importable by a fresh interpreter.
        chunks: iterable of lists of picklable items.
        workers: int >= 1, processes.
        on_crash: callable ``item -> result`` for an item whose task kills
            its worker process.
        inflight_per_worker: int, chunks submitted ahead per worker.
            Defaults to 4.

    Yields:
        one result per item, in input order.
    """
    pool = _Pool(workers)
    limit = workers * inflight_per_worker
    todo = iter(chunks)
    inflight = collections.deque()

    def top_up():
        while len(inflight) < limit:
            chunk = next(todo, None)
            if chunk is None:
                return
            inflight.append((chunk, pool.submit(function, chunk)))

    try:
        top_up()
        while inflight:
            chunk, future = inflight.popleft()
            try:
                results = future.result()
            except BrokenProcessPool:
                # This chunk may be the culprit or a bystander; alone in a
                # fresh pool, item by item, it finishes either way.
                pool.restart()
                results = [_one(pool, function, item, on_crash)
                           for item in chunk]
                # Every other submitted chunk died with the pool: resubmit.
                waiting = [c for c, _ in inflight]
                inflight.clear()
                inflight.extend((c, pool.submit(function, c))
                                for c in waiting)
            top_up()
            yield from results
    finally:
        pool.close()


def _one(pool, function, item, on_crash):
    try:
        return pool.submit(function, [item]).result()[0]
    except BrokenProcessPool:
        pool.restart()
        return on_crash(item)
