"""TF Serving's REST predict format: JSON bodies <-> named tensors.

The request format is TF Serving's (``/v1/models/<name>:predict``):

- row format: ``{"signature_name": ..., "instances": [row, ...]}``, where a
  row is ``{input name: value}``, or just the value when the signature has
  one input;
- columnar format: ``{"inputs": {input name: batch}}``, or just the batch
  when the signature has one input.

String tensors take JSON strings (UTF-8) or ``{"b64": "<base64>"}`` for
binary data such as encoded images. Row requests are answered with
``{"predictions": [...]}`` (one entry per row; a dict of outputs unless
there is only one), columnar ones with ``{"outputs": ...}``. String outputs
whose name ends in ``_bytes`` are written as ``{"b64": ...}``, as TF Serving
does.

``:classify`` and ``:regress`` take TF Serving's example format,
``{"signature_name": ..., "context": {feature: value}, "examples":
[{feature: value}, ...]}``, where a value is a number, a string,
``{"b64": ...}`` or a list of one kind of them (integers go to an
``int64_list``, numbers with a fraction to a ``float_list``, strings to a
``bytes_list``); ``context`` features are added to every example. They are
answered ``{"result": [[[label, score], ...], ...]}`` and ``{"result":
[value, ...]}``.

Every problem with a request raises ``RequestError`` (a
``tfcnn.errors.ServingError``) carrying the HTTP status, so the
server answers ``{"error": "..."}`` and keeps running. Shapes, batch sizes
and finite values are checked by ``tfcnn.serve.inputs``, as for gRPC.
"""

import base64
import binascii
import json

import numpy as np

from tfcnn.errors import RequestError
from tfcnn.serve import inputs as inputs_lib

DEFAULT_SIGNATURE = "serving_default"


def parse_body(body):
    """Returns the JSON object of a request body.

    Raises:
        RequestError: the body is not a JSON object.
    """
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestError(f"malformed JSON request body: {error}") from None
    except RecursionError:
        raise RequestError("malformed JSON request body: nested too "
                           "deeply") from None
    if not isinstance(request, dict):
        raise RequestError("the request body must be a JSON object. "
                           f"Received: {type(request).__name__}")
    return request


def signature_name(request):
    """Returns the signature a predict request asks for."""
    name = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str) or not name:
        raise RequestError("signature_name must be a non-empty string. "
                           f"Received: signature_name={name!r}")
    return name


def request_inputs(request, specs):
    """Converts a predict request to input arrays for a signature.

    Args:
        request: dict, the parsed request body.
        specs: dict, input name -> ``tf.TensorSpec`` of the signature.

    Returns:
        ``(inputs, row_format)``: dict input name -> NumPy array, and
        whether the request used the row (``instances``) format.

    Raises:
        RequestError: missing, unknown, ill-shaped or ill-typed inputs.
    """
    unknown = sorted(set(request) - {"signature_name", "instances",
                                     "inputs"})
    if unknown:
        raise RequestError(f"unknown request keys {unknown}; expected "
                           "'instances' or 'inputs' and 'signature_name'")
    if ("instances" in request) == ("inputs" in request):
        raise RequestError("the request must have exactly one of "
                           "'instances' (row format) or 'inputs' (columnar "
                           "format)")
    row_format = "instances" in request
    try:
        if row_format:
            columns = _columns_from_rows(request["instances"], specs)
        else:
            columns = _columns(request["inputs"], specs)
        inputs = {name: _to_array(name, value, specs[name])
                  for name, value in columns.items()}
    except RecursionError:
        raise RequestError("the request's values are nested too "
                           "deeply") from None
    inputs_lib.check_inputs(inputs, specs)
    return inputs, row_format


def _columns_from_rows(instances, specs):
    if not isinstance(instances, list) or not instances:
        raise RequestError("'instances' must be a non-empty list")
    names = sorted(specs)
    if len(names) == 1 and not (isinstance(instances[0], dict)
                                and set(instances[0]) == set(names)):
        return {names[0]: instances}
    columns = {name: [] for name in names}
    for i, row in enumerate(instances):
        if not isinstance(row, dict) or set(row) != set(names):
            raise RequestError(
                f"instance {i} must be an object with the keys {names}")
        for name in names:
            columns[name].append(row[name])
    return columns


def _columns(inputs, specs):
    names = sorted(specs)
    if isinstance(inputs, dict) and not _is_b64(inputs):
        if set(inputs) != set(names):
            raise RequestError(f"'inputs' must have the keys {names}. "
                               f"Received: {sorted(inputs)}")
        return inputs
    if len(names) != 1:
        raise RequestError(f"'inputs' must be an object with the keys "
                           f"{names}")
    return {names[0]: inputs}


def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"}


def _to_array(name, value, spec):
    """Converts one JSON input to an array of the spec's dtype."""
    dtype = spec.dtype
    try:
        if dtype.name == "string":
            return np.array(_strings(value), dtype=object)
        return _numbers(value, dtype.as_numpy_dtype)
    except ValueError as error:
        raise RequestError(f"input {name!r}: {error}") from None


def _strings(value):
    if isinstance(value, list):
        return [_strings(item) for item in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if _is_b64(value) and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("invalid base64 in a {\"b64\": ...} value") \
                from None
    raise ValueError("expected strings or {\"b64\": ...} objects. "
                     f"Received: {json.dumps(value)[:80]}")


def _numbers(value, dtype):
    """Returns a NumPy array of ``dtype`` from nested JSON lists."""
    array = np.array(value)  # ValueError on ragged nesting
    if array.size == 0 and array.dtype.kind == "f":
        return array.astype(dtype)  # NumPy makes [] float64
    kind = array.dtype.kind
    if dtype == np.bool_:
        if kind != "b":
            raise ValueError(f"expected booleans. Received: {array.dtype}")
        return array
    if kind not in "iuf" or (kind == "f" and np.dtype(dtype).kind != "f"):
        raise ValueError(f"expected {np.dtype(dtype).name} values. "
                         f"Received: {_kind_name(array)}")
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError(f"values out of the {np.dtype(dtype).name} "
                             f"range [{info.min}, {info.max}]")
    return array.astype(dtype)


def _kind_name(array):
    return {"U": "strings", "O": "mixed or non-numeric values",
            "b": "booleans", "f": "floats"}.get(array.dtype.kind,
                                                array.dtype.name)


def response_body(outputs, row_format):
    """Builds the JSON-ready answer from output arrays.

    Args:
        outputs: dict, output name -> NumPy array.
        row_format: bool, answer in row format (``predictions``).

    Returns:
        dict.
    """
    values = {name: _json_value(name, array)
              for name, array in sorted(outputs.items())}
    if not row_format:
        if len(values) == 1:
            return {"outputs": next(iter(values.values()))}
        return {"outputs": values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    batch = len(next(iter(values.values())))
    return {"predictions": [{name: value[i] for name, value in values.items()}
                            for i in range(batch)]}


def _json_value(name, array):
    if array.dtype.kind not in "OS":
        return array.tolist()
    as_b64 = name.endswith("_bytes")

    def convert(item):
        if isinstance(item, list):
            return [convert(x) for x in item]
        if not as_b64:
            try:
                return item.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(item).decode("ascii")}

    return convert(array.tolist())


def request_examples(request):
    """Serialized ``tf.Example``s of a ``:classify``/``:regress`` body.

    Args:
        request: dict, the parsed request body.

    Returns:
        NumPy object array of serialized ``tf.Example`` bytes.

    Raises:
        RequestError: unknown keys, no examples, or a feature value that
            is not a number, string, ``{"b64": ...}`` or a list of one
            kind of them.
    """
    from tensorflow.core.example import example_pb2

    unknown = sorted(set(request) - {"signature_name", "context",
                                     "examples"})
    if unknown:
        raise RequestError(f"unknown request keys {unknown}; expected "
                           "'examples', 'context' and 'signature_name'")
    examples = request.get("examples")
    if not isinstance(examples, list) or not examples:
        raise RequestError("'examples' must be a non-empty list of "
                           "objects")
    context = request.get("context", {})
    if not isinstance(context, dict):
        raise RequestError("'context' must be an object of features")
    serialized = []
    for i, features in enumerate(examples):
        if not isinstance(features, dict):
            raise RequestError(f"example {i} must be an object of "
                               "features")
        example = example_pb2.Example()
        for name, value in {**context, **features}.items():
            _set_feature(example.features.feature[name], name, value, i)
        serialized.append(example.SerializeToString())
    return np.array(serialized, dtype=object)


def _set_feature(feature, name, value, index):
    values = value if isinstance(value, list) else [value]
    try:
        if all(isinstance(v, bool) for v in values) and values:
            raise ValueError("booleans are not a feature type")
        if all(isinstance(v, int) for v in values):
            feature.int64_list.value.extend(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool)
                 for v in values):
            feature.float_list.value.extend(values)
        else:
            feature.bytes_list.value.extend(_strings(values))
    except (ValueError, TypeError) as error:
        raise RequestError(f"example {index}, feature {name!r}: "
                           f"{error}") from None


def classify_body(rows):
    """``{"result": [[[label, score], ...], ...]}`` of Classify rows."""
    return {"result": [[[label, score] for label, score in row]
                       for row in rows]}


def regress_body(values):
    """``{"result": [value, ...]}`` of Regress values."""
    return {"result": list(values)}
