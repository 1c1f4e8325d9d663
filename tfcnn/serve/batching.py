"""Server-side request batching: concurrent requests merged into one call.

TF Serving's batching (``--enable_batching``, ``BatchingParameters``)
queues the requests of one model version and signature and runs them as
one call of up to ``max_batch_size`` rows, started when the batch is full
or when its first request has waited ``batch_timeout_micros``, with at most
``num_batch_threads`` calls running at once; each request gets its own rows
of the outputs back. ``Batcher`` does the same without a thread of its
own: the first waiting request leads its batch (waits, takes the queued
requests that fit, runs the call, hands the rows out) while the others
wait, and passes that role to the next queued request when it leaves.

With ``allowed_batch_sizes`` a merged batch is padded up to the next
allowed size, as TF Serving does. Only requests whose inputs have the same
non-batch shape and dtype are merged (images of different sizes sent as
pixels run apart); a request of ``max_batch_size`` rows or more runs
alone. Each request is decoded and checked on its own before it is queued
(``tfcnn.serve.inference``, ``tfcnn.serve.inputs.check_decodable``), so an
undecodable image never reaches a merged call. What can still fail only
inside the model's graph (a well-formed ``tf.Example`` that lacks a feature
the signature parses, any check a SavedModel makes of its own) fails the
merged call; its requests then run again one by one, so a bad request is
answered with its own error and never with another's. A queue holds at most
``max_enqueued_batches`` batches of rows; beyond it a request is refused
with RESOURCE_EXHAUSTED at once. A request whose deadline passes while it
is queued gets DEADLINE_EXCEEDED and never runs, and one whose client has
gone (its ``cancelled`` event set) gets CANCELLED and never runs.
"""

import collections
import threading
import time

import numpy as np

from tfcnn.errors import ServingError
from tfcnn.errors import StatusCode


class _Task:
    """One request waiting in a batch queue."""

    def __init__(self, inputs, rows, deadline, cancelled=None):
        self.inputs = inputs
        self.rows = rows
        self.deadline = deadline
        self.cancelled = cancelled
        self.key = tuple(sorted((name, array.shape[1:], array.dtype.str)
                                for name, array in inputs.items()))
        self.arrived = time.monotonic()
        self.wake = threading.Event()
        self.lead = False
        self.outputs = None
        self.error = None
        self.done = False

    def finish(self, outputs=None, error=None):
        self.outputs, self.error, self.done = outputs, error, True
        self.wake.set()


class Batcher:
    """Merges concurrent calls of one function on batched inputs.

    Args:
        function: callable, ``function(inputs) -> {output name: array}``
            where ``inputs`` is ``{input name: array}`` with the batch as
            the first dimension of every array.
        parameters: ``tfcnn.serve.config.BatchingParameters``.
        slots: ``threading.Semaphore`` shared by the batchers of a server,
            holding ``num_batch_threads`` permits.

    Example:

    >>> batcher = Batcher(run, BatchingParameters(max_batch_size=8), slots)
    >>> batcher.run({"x": np.ones((1, 4), np.float32)}, rows=1)
    """

    def __init__(self, function, parameters, slots):
        self._function = function
        self._max_rows = parameters.max_batch_size
        self._timeout = parameters.batch_timeout_micros / 1e6
        self._max_queued_rows = (parameters.max_batch_size
                                 * parameters.max_enqueued_batches)
        self._slots = slots
        self._allowed = parameters.allowed_batch_sizes
        self._cond = threading.Condition()
        self._queue = collections.deque()
        self._queued_rows = 0
        self._leading = False
        self.calls = 0  # merged calls run so far

    def run(self, inputs, rows, deadline=None, cancelled=None):
        """Runs ``inputs`` in a merged call; returns this request's outputs.

        Args:
            inputs: dict, input name -> array of ``rows`` rows.
            rows: int, the batch size of the request.
            deadline: float or None, a ``time.monotonic()`` time after
                which the request is dropped if it has not started.
            cancelled: ``Cancelled`` or None, set when the client
                has gone: the request is dropped if it has not started.

        Raises:
            ServingError: RESOURCE_EXHAUSTED when the queue is full,
                DEADLINE_EXCEEDED when the deadline passed in the queue,
                CANCELLED when the client left, or the error of the merged
                call.
        """
        if rows >= self._max_rows:
            with self._slots:
                _check_deadline(deadline)
                check_cancelled(cancelled)
                self.calls += 1
                return self._function(inputs)
        task = _Task(inputs, rows, deadline, cancelled)
        with self._cond:
            if self._queued_rows + rows > self._max_queued_rows:
                raise ServingError(
                    f"the batch queue is full ({self._max_queued_rows} "
                    "rows queued); retry later", StatusCode.RESOURCE_EXHAUSTED)
            self._queue.append(task)
            self._queued_rows += rows
            if not self._leading:
                self._leading = task.lead = True
            self._cond.notify_all()
        while not task.done:
            if task.lead:
                self._lead(task)
            else:
                task.wake.wait()
                task.wake.clear()
        if task.error is not None:
            raise task.error
        return task.outputs

    def _lead(self, task):
        """Waits for a fuller batch, runs it and passes the role on."""
        with self._cond:
            start_by = task.arrived + self._timeout
            while (self._compatible_rows(task) < self._max_rows
                   and time.monotonic() < start_by):
                self._cond.wait(start_by - time.monotonic())
        with self._slots:
            with self._cond:
                batch = self._take(task)
                self._leading = False
                if self._queue:
                    successor = self._queue[0]
                    self._leading = successor.lead = True
                    successor.wake.set()
            self._run(batch)

    def _compatible_rows(self, task):
        return sum(t.rows for t in self._queue if t.key == task.key)

    def _take(self, task):
        """Removes the tasks of ``task``'s batch from the queue."""
        batch, rows, kept = [], 0, collections.deque()
        now = time.monotonic()
        for queued in self._queue:
            if queued.key == task.key and rows + queued.rows <= \
                    self._max_rows:
                batch.append(queued)
                rows += queued.rows
            else:
                kept.append(queued)
        self._queue = kept
        self._queued_rows -= rows
        live = []
        for queued in batch:
            if queued.deadline is not None and now > queued.deadline:
                queued.finish(error=_deadline_error())
            elif queued.cancelled is not None and queued.cancelled.is_set():
                queued.finish(error=_cancelled_error())
            else:
                live.append(queued)
        return live

    def _run(self, batch):
        if not batch:
            return
        self.calls += 1
        total = sum(t.rows for t in batch)
        padded = next((n for n in self._allowed if n >= total), total)
        try:
            if len(batch) == 1 and padded == total:
                outputs = self._function(batch[0].inputs)
            else:
                outputs = self._function(
                    {name: _pad(np.concatenate(
                        [t.inputs[name] for t in batch]), padded)
                     for name in batch[0].inputs})
        except Exception as error:  # noqa: BLE001  (handed to each caller)
            if len(batch) == 1:
                batch[0].finish(error=error)
            else:
                # Undecodable images were refused before queueing; what
                # only the graph can find (a tf.Example without a feature
                # it parses, a model's own checks) fails the merged call:
                # each request runs alone, so only its sender gets its
                # error.
                self._run_apart(batch)
            return
        if padded != total and all(np.ndim(v) and len(v) == padded
                                   for v in outputs.values()):
            outputs = {name: value[:total]
                       for name, value in outputs.items()}
        if any(np.ndim(v) == 0 or len(v) != total for v in outputs.values()):
            # An output without the batch dimension can't be split.
            self._run_apart(batch)
            return
        offsets = np.cumsum([0] + [t.rows for t in batch])
        for queued, begin, end in zip(batch, offsets, offsets[1:]):
            queued.finish({name: value[begin:end]
                           for name, value in outputs.items()})


    def _run_apart(self, batch):
        for queued in batch:
            self.calls += 1
            try:
                queued.finish(self._function(queued.inputs))
            except Exception as error:  # noqa: BLE001
                queued.finish(error=error)


def _pad(array, rows):
    """``array`` with its last row repeated up to ``rows`` rows."""
    if len(array) >= rows:
        return array
    return np.concatenate([array, np.repeat(array[-1:], rows - len(array),
                                            axis=0)])


def _deadline_error():
    return ServingError("the request's deadline passed while it was "
                        "queued", StatusCode.DEADLINE_EXCEEDED)


def _cancelled_error():
    return ServingError("the client left before the request started",
                        StatusCode.CANCELLED)


class Cancelled:
    """Set when a request's client is gone: its work not yet started is
    dropped (``check_cancelled``).

    What ``threading.Event`` offers a request here (``set``, ``is_set``),
    without the lock and condition each ``Event`` allocates: one thread
    sets a bool that others read, which the GIL keeps whole.
    """

    __slots__ = ("_set",)

    def __init__(self):
        self._set = False

    def set(self):
        self._set = True

    def is_set(self):
        return self._set


def check_cancelled(cancelled):
    if cancelled is not None and cancelled.is_set():
        raise _cancelled_error()


def _check_deadline(deadline):
    if deadline is not None and time.monotonic() > deadline:
        raise _deadline_error()
