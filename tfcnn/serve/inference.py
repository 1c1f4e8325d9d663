"""What the REST and gRPC front ends share: admission, checks, the call.

``Inference`` answers a predict request given as ``{input name: NumPy
array}`` for a served version and signature: it checks the inputs
(``tfcnn.serve.inputs``), runs the signature directly or through the
version's ``Batcher`` (``tfcnn.serve.batching``) and returns ``{output
name: NumPy array}``. Both front ends therefore give identical outputs for
the same request. It also bounds the server's work: ``admit()`` lets at
most ``max_in_flight`` requests be in flight or queued at once and refuses
the next one at once with RESOURCE_EXHAUSTED (HTTP 429), so overload never
builds an unbounded queue; every request has a deadline (the client's, at
most ``request_timeout_s``) after which it is dropped unstarted.
"""

import contextlib
import threading
import time

import tensorflow as tf

from tfcnn.errors import ServingError
from tfcnn.errors import StatusCode
from tfcnn.export import arguments
from tfcnn.serve import batching
from tfcnn.serve import inputs as inputs_lib
from tfcnn.serve import metrics as metrics_lib
from tfcnn.serve import repository as repository_lib

DEFAULT_SIGNATURE = "serving_default"


class Inference:
    """Runs checked, bounded predict calls on a ``ModelRepository``.

    Args:
        models: ``repository.ModelRepository``.
        limits: ``inputs.Limits``. Defaults to ``Limits()``.
        batching: ``config.BatchingParameters`` or None (no batching).
            Defaults to None.
        max_in_flight: int, requests in flight or queued at once; more get
            RESOURCE_EXHAUSTED. Defaults to 64.
        request_timeout_s: float, the longest a request may wait before
            its call starts. Defaults to 30.0.
    """

    def __init__(self, models, limits=None, batching=None,
                 max_in_flight=64, request_timeout_s=30.0):
        arguments.check_positive_int(max_in_flight, "max_in_flight")
        if not request_timeout_s > 0:
            raise arguments.ArgumentError(
                "request_timeout_s must be > 0. "
                f"Received: request_timeout_s={request_timeout_s!r}")
        self.models = models
        self.limits = limits or inputs_lib.Limits()
        self.batching = batching
        self.max_in_flight = max_in_flight
        self.request_timeout_s = request_timeout_s
        self.metrics = metrics_lib.Metrics(models.names)
        self._in_flight = 0
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(
            batching.num_batch_threads if batching else 1)

    @property
    def in_flight(self):
        """Requests admitted and not finished."""
        return self._in_flight

    @contextlib.contextmanager
    def admit(self):
        """Holds one of ``max_in_flight`` places, or refuses at once.

        Raises:
            ServingError: RESOURCE_EXHAUSTED when every place is taken.
        """
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                raise ServingError(
                    f"the server has {self.max_in_flight} requests in "
                    "flight or queued (its limit); retry later",
                    StatusCode.RESOURCE_EXHAUSTED)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def deadline(self, client_seconds=None):
        """The ``time.monotonic()`` deadline of a request starting now."""
        seconds = self.request_timeout_s
        if client_seconds is not None:
            seconds = min(seconds, client_seconds)
        return time.monotonic() + seconds

    def served(self, name, version=None, label=None):
        """The ``ServedVersion`` a request names (NOT_FOUND if none)."""
        try:
            return self.models.get(name, version, label)
        except repository_lib.NotFoundError as error:
            raise ServingError(str(error), StatusCode.NOT_FOUND) from None

    def status(self, name, version=None, label=None):
        """The model's version status list (NOT_FOUND if unknown)."""
        try:
            return self.models.status(name, version, label)
        except repository_lib.NotFoundError as error:
            raise ServingError(str(error), StatusCode.NOT_FOUND) from None

    @staticmethod
    def input_specs(served, signature):
        """``{input name: tf.TensorSpec}`` of a served signature."""
        if signature not in served.signatures:
            raise ServingError(
                f"serving signature {signature!r} not found; the model "
                f"has {sorted(served.signatures)}")
        return served.input_specs(signature)

    def predict(self, served, signature, inputs, deadline=None,
                cancelled=None):
        """Runs a checked predict call; returns ``{output name: array}``.

        Args:
            served: ``repository.ServedVersion``.
            signature: str, the signature name.
            inputs: dict, input name -> NumPy array.
            deadline: float or None, from ``deadline()``.
            cancelled: ``threading.Event`` or None, set when the client
                has gone; a request not yet started is then dropped.

        Raises:
            ServingError: a bad input (INVALID_ARGUMENT), a request over
                the limits (INVALID_ARGUMENT, HTTP 413), a full queue
                (RESOURCE_EXHAUSTED), a passed deadline
                (DEADLINE_EXCEEDED), a client that left (CANCELLED).
        """
        specs = self.input_specs(served, signature)
        rows = inputs_lib.check_inputs(inputs, specs)
        inputs_lib.check_limits(inputs, rows, self.limits)
        function = served.signatures[signature]

        def call(arrays):
            return _call(function, specs, arrays)

        if self.batching is None or rows == 0:
            if deadline is not None and time.monotonic() > deadline:
                raise ServingError("the request's deadline passed before "
                                   "it started", StatusCode.DEADLINE_EXCEEDED)
            batching.check_cancelled(cancelled)
            return call(inputs)
        with served.lock:
            batcher = served.batchers.get(signature)
            if batcher is None:
                batcher = served.batchers[signature] = batching.Batcher(
                    call, self.batching, self._slots)
        return batcher.run(inputs, rows, deadline, cancelled)


def _call(function, specs, arrays):
    """Calls a signature function on NumPy arrays; returns NumPy arrays."""
    tensors = {name: tf.constant(value, dtype=specs[name].dtype)
               for name, value in arrays.items()}
    try:
        outputs = function(**tensors)
    except tf.errors.InvalidArgumentError as error:
        raise ServingError(op_message(error)) from None
    except tf.errors.ResourceExhaustedError as error:
        raise ServingError(op_message(error),
                           StatusCode.RESOURCE_EXHAUSTED) from None
    except UnicodeDecodeError:
        # TensorFlow could not decode an op's error message because it
        # quotes the request's bytes (bytes that are not a serialized
        # tf.Example, for one): the input was wrong, not the server.
        raise ServingError("the model could not read the request's input "
                           "bytes (for a tf.Example input: they are not "
                           "a serialized tf.Example)") from None
    return {name: value.numpy() for name, value in outputs.items()}


def op_message(error):
    """The line of a graph error that says what was wrong with the input."""
    lines = [line for line in str(error.message).splitlines()
             if line.strip()]
    for before, line in zip(lines, lines[1:]):
        if "[[{{node" in line:
            return before.strip()
    return lines[-1].strip() if lines else type(error).__name__
