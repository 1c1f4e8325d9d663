"""TF Serving's gRPC API on grpcio, with the protos of tensorflow-serving-api.

``tensorflow.serving.PredictionService``: ``Predict`` (named input
tensors), ``Classify`` and ``Regress`` (``tf.Example`` inputs, with an
optional shared context, answered from a signature's ``classes``/
``class_names`` and ``scores`` outputs, or its ``outputs``) and
``GetModelMetadata`` (the ``signature_def`` map); and
``tensorflow.serving.ModelService.GetModelStatus``. A client written for
TF Serving with ``prediction_service_pb2_grpc.PredictionServiceStub`` works
unchanged. Requests go through the same ``Inference`` as REST ones, so the
outputs are identical; errors carry the canonical codes of
``tfcnn.errors.StatusCode`` (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED,
DEADLINE_EXCEEDED), never UNKNOWN for a client's mistake.
"""

import concurrent.futures
import logging
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2

from tfcnn.errors import ServingError
from tfcnn.errors import StatusCode
from tfcnn.export import layout
from tfcnn.serve import batching
from tfcnn.serve import inference as inference_lib

_log = logging.getLogger(__name__)

_STATES = {"AVAILABLE": get_model_status_pb2.ModelVersionStatus.AVAILABLE,
           "END": get_model_status_pb2.ModelVersionStatus.END}


def _model_spec(spec):
    """``(name, version, label)`` of a request's ``ModelSpec``."""
    version = label = None
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        version = spec.version.value
        if version < 1:
            raise ServingError("the version must be a positive integer. "
                               f"Received: version={version}")
    elif choice == "version_label":
        label = spec.version_label
    if not layout.is_model_name(spec.name):
        raise ServingError(f"Servable not found for request: model "
                           f"{spec.name!r}", StatusCode.NOT_FOUND)
    return spec.name, version, label


def _answer(inference, api, request, context, body):
    """Runs ``body()``; aborts with the error's code; records metrics.

    A client that cancelled its call or let its deadline pass before the
    answer is logged in one line (its queued work was dropped through
    ``_cancelled``) and counted as CANCELLED.
    """
    start = time.perf_counter()
    code = "OK"
    try:
        return body()
    except ServingError as error:
        code = error.code.name
        context.abort(getattr(grpc.StatusCode, code), str(error))
    finally:
        if not context.is_active():
            code = StatusCode.CANCELLED.name
            _log.info("gRPC client %s left before the answer to %s of "
                      "model %r; its work not yet started was dropped",
                      context.peer(), api, request.model_spec.name)
        inference.metrics.observe(request.model_spec.name, api, "GRPC",
                                  code, time.perf_counter() - start)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``tensorflow.serving.PredictionService`` over an ``Inference``."""

    def __init__(self, inference):
        self.inference = inference

    def Predict(self, request, context):  # noqa: N802  (gRPC's name)
        def body():
            with self.inference.admit():
                served, signature = self._resolve(request)
                specs = self.inference.input_specs(served, signature)
                arrays = {}
                for name, proto in request.inputs.items():
                    if name not in specs:
                        raise ServingError(
                            f"input {name!r} is not an input of signature "
                            f"{signature!r}; it has {sorted(specs)}")
                    arrays[name] = _to_array(name, proto,
                                              self.inference.limits)
                outputs = self.inference.predict(
                    served, signature, arrays,
                    self.inference.deadline(context.time_remaining()),
                    _cancelled(context))
            wanted = list(request.output_filter) or sorted(outputs)
            unknown = sorted(set(wanted) - set(outputs))
            if unknown:
                raise ServingError(f"output_filter names unknown outputs "
                                   f"{unknown}; the signature has "
                                   f"{sorted(outputs)}")
            response = predict_pb2.PredictResponse()
            _fill_spec(response.model_spec, served, signature)
            for name in wanted:
                response.outputs[name].CopyFrom(
                    tensor_proto(outputs[name]))
            return response

        return _answer(self.inference, "predict", request, context,
                       body)

    def Classify(self, request, context):  # noqa: N802
        def body():
            with self.inference.admit():
                served, signature = self._resolve(request, classify=True)
                rows = self.inference.classify(
                    served, signature, _examples(request),
                    self.inference.deadline(context.time_remaining()),
                    _cancelled(context))
            response = classification_pb2.ClassificationResponse()
            _fill_spec(response.model_spec, served, signature)
            for row in rows:
                result = response.result.classifications.add()
                for label, score in row:
                    result.classes.add(label=label, score=score)
            return response

        return _answer(self.inference, "classify", request, context,
                       body)

    def Regress(self, request, context):  # noqa: N802
        def body():
            with self.inference.admit():
                served, signature = self._resolve(request, classify=True)
                values = self.inference.regress(
                    served, signature, _examples(request),
                    self.inference.deadline(context.time_remaining()),
                    _cancelled(context))
            response = regression_pb2.RegressionResponse()
            _fill_spec(response.model_spec, served, signature)
            for value in values:
                response.result.regressions.add(value=value)
            return response

        return _answer(self.inference, "regress", request, context, body)

    def GetModelMetadata(self, request, context):  # noqa: N802
        def body():
            fields = set(request.metadata_field)
            if fields != {"signature_def"}:
                raise ServingError(
                    "metadata_field must be ['signature_def']. "
                    f"Received: {sorted(fields)}")
            name, version, label = _model_spec(request.model_spec)
            served = self.inference.served(name, version, label)
            signatures = get_model_metadata_pb2.SignatureDefMap()
            for key, value in served.signature_defs.items():
                signatures.signature_def[key].CopyFrom(value)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            _fill_spec(response.model_spec, served, "")
            response.metadata["signature_def"].Pack(signatures)
            return response

        return _answer(self.inference, "metadata", request, context,
                       body)

    def _resolve(self, request, classify=False):
        name, version, label = _model_spec(request.model_spec)
        served = self.inference.served(name, version, label)
        signature = request.model_spec.signature_name
        if classify:
            signature = self.inference.examples_signature(served, signature)
        return served, signature or inference_lib.DEFAULT_SIGNATURE


def _examples(request):
    """The serialized ``tf.Example``s of a Classify or Regress request."""
    kind = request.input.WhichOneof("kind")
    if kind == "example_list":
        examples = request.input.example_list.examples
        context = None
    elif kind == "example_list_with_context":
        examples = request.input.example_list_with_context.examples
        context = request.input.example_list_with_context.context
    else:
        raise ServingError("the request's input must hold an example_list "
                           f"or example_list_with_context. Received: {kind}")
    serialized = []
    for example in examples:
        if context is not None:
            merged = type(example)()
            merged.CopyFrom(context)
            merged.MergeFrom(example)
            example = merged
        serialized.append(example.SerializeToString())
    if not serialized:
        raise ServingError("the request holds no examples")
    return np.array(serialized, dtype=object)


def _cancelled(context):
    """A ``batching.Cancelled`` set when the RPC ends, so queued work of a
    client that cancelled (or whose deadline passed) is dropped before it
    runs."""
    cancelled = batching.Cancelled()
    if not context.add_callback(cancelled.set):
        cancelled.set()
    return cancelled


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """``tensorflow.serving.ModelService.GetModelStatus``."""

    def __init__(self, inference):
        self.inference = inference

    def GetModelStatus(self, request, context):  # noqa: N802
        def body():
            name, version, label = _model_spec(request.model_spec)
            response = get_model_status_pb2.GetModelStatusResponse()
            for entry in self.inference.status(name, version, label):
                status = response.model_version_status.add(
                    version=int(entry["version"]),
                    state=_STATES[entry["state"]])
                failed = entry["status"]["error_code"] != "OK"
                status.status.error_code = 2 if failed else 0  # UNKNOWN
                status.status.error_message = entry["status"][
                    "error_message"]
            return response

        return _answer(self.inference, "status", request, context, body)


# TensorProto's repeated value fields, and values per element in each.
_VALUE_FIELDS = (("half_val", 1), ("float_val", 1), ("double_val", 1),
                 ("int_val", 1), ("string_val", 1), ("scomplex_val", 2),
                 ("int64_val", 1), ("bool_val", 1), ("dcomplex_val", 2),
                 ("uint32_val", 1), ("uint64_val", 1))
# A few values may be repeated to fill a declared shape (TensorFlow's own
# convention for protos such as make_tensor_proto(0.0, shape=[3])), as long
# as the expanded tensor stays this small.
_MAX_EXPANDED_BYTES = 2**20


def check_tensor_proto(name, proto, limits):
    """Checks a ``TensorProto``'s declared shape before anything is made.

    ``tf.make_ndarray`` allocates the declared shape and repeats the last
    value to fill it, so a 40-byte proto can ask for gigabytes, and a
    string decoded once per element can be declared a thousand times. The
    shape must match the content (``tensor_content`` bytes or the number
    of values; a few numeric values may fill up to 1 MiB), its first
    dimension must be within ``limits.max_instances`` and the height x
    width of a rank-4 (NHWC) tensor within ``limits.max_pixels``.

    Raises:
        ServingError: (INVALID_ARGUMENT) a shape the content or the
            limits don't allow.
    """
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank and dims:
        raise ServingError(f"input {name!r}: a TensorProto with "
                           "unknown_rank must not list dimensions")
    if any(d < 0 for d in dims):
        raise ServingError(f"input {name!r}: the shape {dims} has a "
                           "negative dimension")
    if dims and dims[0] > limits.max_instances:
        raise ServingError(
            f"input {name!r}: the request has {dims[0]} instances, more "
            f"than the server's max_instances={limits.max_instances}",
            http_status=413)
    if len(dims) == 4 and dims[1] * dims[2] > limits.max_pixels:
        raise ServingError(
            f"input {name!r}: {dims[1]}x{dims[2]} images are larger than "
            f"the server's max_pixels={limits.max_pixels}",
            http_status=413)
    elements = int(np.prod(dims, dtype=object)) if dims else 1
    try:
        dtype = tf.dtypes.as_dtype(proto.dtype)
    except TypeError:
        raise ServingError(f"input {name!r}: unknown dtype enum "
                           f"{proto.dtype}") from None
    itemsize = 0 if dtype == tf.string else np.dtype(
        dtype.as_numpy_dtype).itemsize
    if proto.tensor_content:
        if dtype == tf.string or \
                len(proto.tensor_content) != elements * itemsize:
            raise ServingError(
                f"input {name!r}: tensor_content has "
                f"{len(proto.tensor_content)} bytes; shape {dims} of "
                f"{dtype.name} needs {elements * itemsize}")
        return
    values = sum(len(getattr(proto, field)) // per
                 for field, per in _VALUE_FIELDS)
    if values == elements or (
            0 < values < elements and dtype != tf.string
            and elements * itemsize <= _MAX_EXPANDED_BYTES):
        return
    raise ServingError(f"input {name!r}: the TensorProto holds {values} "
                       f"values for its shape {dims} of {elements} "
                       "elements")


# The dtypes whose protos ``tf.make_tensor_proto`` writes as raw
# ``tensor_content`` (for more than one element), as NumPy dtypes.
_CONTENT_DTYPES = {np.dtype(t): tf.as_dtype(t).as_datatype_enum for t in (
    np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
    np.int64, np.uint8, np.uint32, np.uint64)}


def tensor_proto(array):
    """``tf.make_tensor_proto(array)`` of an output array, without its
    per-call Python checks.

    ``make_tensor_proto`` costs about 0.1 ms an output (its dtype and
    shape inference, and a Python loop over string elements), several
    times the rest of a small model's answer. For the arrays signatures
    return (numeric ones, which become ``tensor_content``, and byte
    strings, ``string_val``) this builds the same proto directly; any
    other array goes through ``make_tensor_proto``.
    """
    array = np.asarray(array)
    enum = _CONTENT_DTYPES.get(array.dtype)
    strings = array.dtype.kind == "O" and all(
        isinstance(value, bytes) for value in array.flat)
    if not strings and (enum is None or array.size <= 1):
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(
        dtype=enum if enum is not None else types_pb2.DT_STRING)
    proto.tensor_shape.SetInParent()  # a scalar's shape is set, empty
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if strings:
        proto.string_val.extend(array.flat)
    else:
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    return proto


def _to_array(name, proto, limits):
    check_tensor_proto(name, proto, limits)
    dims = [d.size for d in proto.tensor_shape.dim]
    # What tf.make_ndarray does for these two common protos, without its
    # per-call overhead (0.1-0.2 ms for one encoded image).
    if proto.dtype == types_pb2.DT_STRING and len(
            proto.string_val) == int(np.prod(dims, dtype=np.int64)):
        return np.array(list(proto.string_val), dtype=object).reshape(dims)
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as error:
        raise ServingError(f"input {name!r}: not a valid TensorProto: "
                           f"{error}") from None


def _fill_spec(spec, served, signature):
    spec.name = served.name
    spec.version.value = served.version
    spec.signature_name = signature


def create_server(inference, host="127.0.0.1", port=8500, max_workers=None):
    """Returns ``(grpc.Server, bound port)``, not started.

    Args:
        inference: ``inference.Inference``.
        host: str. Defaults to "127.0.0.1".
        port: int, 0 picks a free one. Defaults to 8500 (TF Serving's
            gRPC port).
        max_workers: int or None, RPC threads; None: the admission limit
            plus spare threads for status and metadata calls.

    Raises:
        OSError: the address can't be bound (EADDRINUSE when taken).
    """
    workers = max_workers or inference.max_in_flight + 8
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="tfcnn-grpc"),
        options=[("grpc.so_reuseport", 0),
                 ("grpc.max_receive_message_length", 64 * 2**20)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(inference), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(inference), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(98, f"can't bind {address}: {error}") from None
    if not bound:
        raise OSError(98, f"can't bind {address}")
    return server, bound
