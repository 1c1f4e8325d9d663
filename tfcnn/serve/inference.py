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
# The outputs TF Serving's Classify reads (classes: labels, or ids as
# class_names here), and the one its Regress reads.
CLASS_OUTPUTS = ("classes", "class_names")
SCORES_OUTPUT = "scores"
REGRESSION_OUTPUT = "outputs"


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
            cancelled: ``batching.Cancelled`` or None, set when the client
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
        if rows < self.batching.max_batch_size:
            # It will share a merged call: an input that does not decode
            # is refused now, alone, and never costs the others a call.
            inputs_lib.check_decodable(inputs, specs,
                                       served.string_kinds[signature])
        with served.lock:
            batcher = served.batchers.get(signature)
            if batcher is None:
                batcher = served.batchers[signature] = batching.Batcher(
                    call, self.batching, self._slots)
        return batcher.run(inputs, rows, deadline, cancelled)


    def examples_signature(self, served, signature=""):
        """The signature Classify and Regress use.

        The one named, else TF Serving's default (``serving_default``)
        when it takes one string input, else the first signature whose one
        input is a string vector named ``inputs`` or ``examples`` (TF
        Serving's classify input key and the dataset's).
        """
        if signature:
            return signature
        candidates = [DEFAULT_SIGNATURE] + sorted(served.signatures)
        for name in candidates:
            if name not in served.signatures:
                continue
            specs = served.input_specs(name)
            if len(specs) != 1:
                continue
            (input_name, spec), = specs.items()
            if spec.dtype == tf.string and (
                    input_name in ("inputs", "examples")):
                return name
        return DEFAULT_SIGNATURE

    def classify(self, served, signature, examples, deadline=None,
                 cancelled=None):
        """TF Serving's Classify on serialized ``tf.Example``s.

        Returns:
            list, per example a list of ``(label str, score float)``.

        Raises:
            ServingError: as ``predict``, or a signature without
                ``classes`` (or ``class_names``) and ``scores`` outputs.
        """
        outputs = self._run_examples(served, signature, examples, deadline,
                                     cancelled)
        classes = next((outputs[n] for n in CLASS_OUTPUTS
                        if n in outputs), None)
        scores = outputs.get(SCORES_OUTPUT)
        if classes is None or scores is None:
            raise ServingError(
                f"signature {signature!r} has no 'classes' (or "
                f"'class_names') and 'scores' outputs to classify with; "
                f"it has {sorted(outputs)}")
        return [[(_label(label), float(score))
                 for label, score in zip(row_classes, row_scores)]
                for row_classes, row_scores in zip(classes, scores)]

    def regress(self, served, signature, examples, deadline=None,
                cancelled=None):
        """TF Serving's Regress on serialized ``tf.Example``s.

        Returns:
            list of float, one per example.

        Raises:
            ServingError: as ``predict``, or a signature without one
                ``outputs`` value per example.
        """
        self.input_specs(served, signature)
        declared = served.signatures[signature].structured_outputs
        if REGRESSION_OUTPUT not in declared:
            raise ServingError(
                f"signature {signature!r} has no 'outputs' output to "
                f"regress with; it has {sorted(declared)}")
        outputs = self._run_examples(served, signature, examples, deadline,
                                     cancelled)
        values = outputs[REGRESSION_OUTPUT]
        if values.size != len(examples):
            raise ServingError(
                f"signature {signature!r} gave {values.size} 'outputs' "
                f"values for {len(examples)} examples")
        return [float(v) for v in values.reshape(-1)]

    def _run_examples(self, served, signature, examples, deadline,
                      cancelled):
        specs = self.input_specs(served, signature)
        if len(specs) != 1:
            raise ServingError(
                f"signature {signature!r} must take one input of "
                f"serialized tf.Examples; it takes {sorted(specs)}")
        return self.predict(served, signature,
                            {next(iter(specs)): examples}, deadline,
                            cancelled)


def _label(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


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
