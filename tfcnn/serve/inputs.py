"""Checks of a request's input tensors against a signature and the limits.

Both front ends (REST's JSON and gRPC's ``TensorProto``) turn a request
into ``{input name: NumPy array}`` and pass it through ``check_inputs``
(the signature's names, dtypes and shapes; finite numbers) and
``check_limits`` (instances per request; image dimensions read from the
encoded header before anything is decoded, as ingest guards against
decompression bombs). Nothing here knows which model or task it serves: a
string input is checked as an image only when its bytes start like one, or
as a ``tf.Example`` whose byte features do.

With batching, ``check_decodable`` also decodes each request's images (or
parses its ``tf.Example``s) on its own before the request joins a batch, so
one bad request fails alone instead of failing a merged call of many. What
a signature's string inputs hold is read from its graph (``string_kind``:
does it parse ``tf.Example``s, does it decode images), not from its name.
"""

import dataclasses
import enum
import io
import re
import warnings

import numpy as np
from PIL import Image

from tfcnn.errors import ServingError
from tfcnn.export import arguments

# Leading bytes of the formats TensorFlow's image decoders read.
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a",
                     b"GIF89a", b"BM")


# The graph ops that tell what a signature's string inputs hold.
_EXAMPLE_OPS = frozenset({"ParseExample", "ParseExampleV2",
                          "ParseSingleExample"})
_DECODE_OPS = frozenset({"DecodeImage", "DecodeJpeg", "DecodeAndCropJpeg",
                         "DecodePng", "DecodeGif", "DecodeBmp"})


class StringKind(enum.Enum):
    """What a signature's string inputs hold, as its graph shows."""

    EXAMPLE = "serialized tf.Example"  # the graph parses Examples
    IMAGE = "encoded image"  # the graph decodes images, parses no Example
    OTHER = "other"  # neither: nothing to check ahead of the call


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    Attributes:
        max_instances: int, rows (the batch dimension) in one request.
            Defaults to 1024.
        max_pixels: int, width x height of any encoded image in a request,
            read from its header before it is decoded. Defaults to
            40,000,000 (a 40-megapixel photo; its decode alone takes
            120 MB).
    """

    max_instances: int = 1024
    max_pixels: int = 40_000_000

    def __post_init__(self):
        arguments.check_positive_int(self.max_instances, "max_instances")
        arguments.check_positive_int(self.max_pixels, "max_pixels")


def check_inputs(inputs, specs):
    """Checks arrays against a signature's input specs.

    Args:
        inputs: dict, input name -> NumPy array (already of the spec's
            dtype for REST; checked here for gRPC).
        specs: dict, input name -> ``tf.TensorSpec``.

    Returns:
        the batch size (rows of the first dimension), or 0 for scalars.

    Raises:
        ServingError: (INVALID_ARGUMENT) missing or unknown inputs, a
            dtype, rank or dimension that does not match, inputs with
            different batch sizes, an empty batch, NaN or infinity.
    """
    if set(inputs) != set(specs):
        raise ServingError(
            f"the signature's inputs are {sorted(specs)}. "
            f"Received: {sorted(inputs)}")
    for name, array in inputs.items():
        _check_tensor(name, array, specs[name])
    batch_sizes = {array.shape[0] for array in inputs.values()
                   if array.ndim}
    if len(batch_sizes) > 1:
        raise ServingError("inputs have different batch sizes: "
                           f"{sorted(batch_sizes)}")
    return batch_sizes.pop() if batch_sizes else 0


def _check_tensor(name, array, spec):
    want = spec.dtype.as_numpy_dtype
    if spec.dtype.name == "string":
        if array.dtype.kind not in "OSU":
            raise ServingError(f"input {name!r} must be strings. "
                               f"Received: dtype={array.dtype.name}")
    elif array.dtype != np.dtype(want):
        raise ServingError(f"input {name!r} must be {spec.dtype.name}. "
                           f"Received: dtype={array.dtype.name}")
    shape = spec.shape
    if shape.rank is not None and (array.ndim != shape.rank or any(
            expected is not None and expected != got
            for expected, got in zip(shape.as_list(), array.shape))):
        raise ServingError(
            f"input {name!r} must have shape {_shape_text(shape)}. "
            f"Received: shape={list(array.shape)}")
    if array.ndim and array.shape[0] == 0:
        raise ServingError(f"input {name!r} is an empty batch")
    if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        raise ServingError(f"input {name!r} holds NaN or infinite values")


def _shape_text(shape):
    return "[" + ", ".join("?" if d is None else str(d)
                           for d in shape.as_list()) + "]"


def check_limits(inputs, batch_size, limits):
    """Checks a request against the server's ``Limits``.

    Raises:
        ServingError: (INVALID_ARGUMENT, HTTP 413) too many instances, or
            an encoded image with more than ``max_pixels`` pixels.
    """
    if batch_size > limits.max_instances:
        raise ServingError(
            f"the request has {batch_size} instances, more than the "
            f"server's max_instances={limits.max_instances}",
            http_status=413)
    for name, array in inputs.items():
        if array.dtype.kind == "O":
            for value in array.flat:
                _check_string(name, value, limits.max_pixels)


def _check_string(name, value, max_pixels):
    if not isinstance(value, bytes):
        return
    if value.startswith(_IMAGE_SIGNATURES):
        _check_image_header(name, value, max_pixels)
        return
    for data in _example_bytes(value):
        if data.startswith(_IMAGE_SIGNATURES):
            _check_image_header(name, data, max_pixels)


def _check_image_header(name, data, max_pixels):
    problem = image_too_large(data, max_pixels, "the server's ")
    if problem is not None:
        raise ServingError(f"input {name!r}: {problem}", http_status=413)


def image_too_large(data, max_pixels, whose=""):
    """Why an encoded image is over ``max_pixels``, or None.

    Reads width and height from the header only (no pixel is decoded), as
    ingest does, so a small file that declares a huge image (a
    decompression bomb) is refused before it costs memory. Bytes that are
    not a readable image header pass: the model's decoder will say why.

    Args:
        data: bytes, an encoded image.
        max_pixels: int, the most width x height allowed.
        whose: str, the limit's owner in the message ("the server's ").

    Returns:
        str or None: one line naming the size and the limit.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError as error:
        return f"{error}; {whose}max_pixels={max_pixels}"
    except Exception:  # noqa: BLE001  (the model's decoder will say why)
        return None
    if width * height > max_pixels:
        return (f"a {width}x{height} image ({width * height} pixels) is "
                f"larger than {whose}max_pixels={max_pixels}")
    return None


def string_kind(function):
    """The ``StringKind`` of a signature's string inputs.

    Args:
        function: a concrete function (a loaded SavedModel's signature);
            its graph and the functions it calls are searched for the ops
            that parse ``tf.Example``s or decode images.
    """
    graph_def = function.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    ops.update(node.op for library_function in graph_def.library.function
               for node in library_function.node_def)
    if ops & _EXAMPLE_OPS:
        return StringKind.EXAMPLE
    if ops & _DECODE_OPS:
        return StringKind.IMAGE
    return StringKind.OTHER


def check_decodable(inputs, specs, kind):
    """Decodes each string of a request as its signature will, alone.

    With ``StringKind.IMAGE`` every string must decode as an image with
    TensorFlow's own decoder (the one the exported signatures use); with
    ``StringKind.EXAMPLE`` every string must parse as a ``tf.Example`` and
    its byte features that start like an image must decode. Run before a
    request joins a batch, so an undecodable one is refused alone.

    Args:
        inputs: dict, input name -> NumPy array.
        specs: dict, input name -> ``tf.TensorSpec``.
        kind: ``StringKind`` of the signature (``string_kind``).

    Raises:
        ServingError: (INVALID_ARGUMENT) naming the input and the instance
            that does not decode.
    """
    if kind is StringKind.OTHER:
        return
    for name, array in inputs.items():
        if specs[name].dtype.name != "string":
            continue
        for index, value in enumerate(array.flat):
            data = value.encode() if isinstance(value, str) else value
            if kind is StringKind.EXAMPLE:
                images = _example_bytes(data, strict=True)
                if images is None:
                    raise ServingError(
                        f"input {name!r}: instance {index} is not a "
                        "serialized tf.Example")
                images = [b for b in images if b.startswith(
                    _IMAGE_SIGNATURES)]
            else:
                images = [data]
            for image in images:
                problem = _undecodable(image)
                if problem is not None:
                    raise ServingError(
                        f"input {name!r}: instance {index} is not a "
                        f"decodable image: "
                        f"{problem}")


def _undecodable(data):
    """Why TensorFlow can't decode ``data`` as an image, or None."""
    import tensorflow as tf

    try:
        # The kernel tf.io.decode_image runs, without that wrapper's
        # Python (half the time of decoding a small image).
        tf.raw_ops.DecodeImage(contents=data, channels=3,
                               expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
        # Eager errors read "{{function_node ...}} <why> [Op:DecodeImage]".
        message = re.sub(r"^\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]"
                         r".*$", "", str(error.message).strip())
        return message.splitlines()[0] if message else "undecodable"
    return None


def _example_bytes(value, strict=False):
    """The byte features of ``value`` read as a ``tf.Example``: none, or
    None when ``strict``, if it is not one."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    try:
        example.ParseFromString(value)
    except Exception:  # noqa: BLE001  (not an Example: nothing to check)
        return None if strict else []
    return [data for feature in example.features.feature.values()
            for data in feature.bytes_list.value]
