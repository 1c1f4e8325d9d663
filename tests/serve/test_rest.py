"""Tests of the TF Serving REST JSON <-> tensor conversion."""

import base64
import json

import numpy as np
import pytest
import tensorflow as tf

from tfcnn.errors import ServingError
from tfcnn.serve import rest

BYTES = {"image_bytes": tf.TensorSpec([None], tf.string)}
PIXELS = {"images": tf.TensorSpec([None, None, None, 3], tf.uint8)}
FLOATS = {"images": tf.TensorSpec([None, 2], tf.float32)}
TWO = {"a": tf.TensorSpec([None], tf.int32),
       "b": tf.TensorSpec([None], tf.float32)}


def b64(data):
    return {"b64": base64.b64encode(data).decode()}


def test_row_format_with_bare_b64_values():
    inputs, row = rest.request_inputs(
        {"instances": [b64(b"\x00\xff"), b64(b"png")]}, BYTES)
    assert row is True
    assert inputs["image_bytes"].tolist() == [b"\x00\xff", b"png"]


def test_row_format_with_named_inputs_and_plain_strings():
    inputs, _ = rest.request_inputs(
        {"instances": [{"image_bytes": "abc"}]}, BYTES)
    assert inputs["image_bytes"].tolist() == [b"abc"]


def test_columnar_format_named_and_bare():
    named, row = rest.request_inputs(
        {"inputs": {"images": [[1.0, 2.0]]}}, FLOATS)
    bare, _ = rest.request_inputs({"inputs": [[1, 2]]}, FLOATS)
    assert row is False
    assert named["images"].dtype == np.float32
    np.testing.assert_array_equal(named["images"], bare["images"])


def test_multiple_inputs_in_rows_and_columns():
    rows, _ = rest.request_inputs(
        {"instances": [{"a": 1, "b": 0.5}, {"a": 2, "b": 1.5}]}, TWO)
    cols, _ = rest.request_inputs({"inputs": {"a": [1, 2],
                                              "b": [0.5, 1.5]}}, TWO)
    for name in TWO:
        np.testing.assert_array_equal(rows[name], cols[name])


@pytest.mark.parametrize("request_body,specs,match", [
    ({}, BYTES, "exactly one of"),
    ({"instances": [1], "inputs": [1]}, BYTES, "exactly one of"),
    ({"instances": []}, BYTES, "non-empty list"),
    ({"instances": "x"}, BYTES, "non-empty list"),
    ({"instances": [1], "extra": 1}, BYTES, "unknown request keys"),
    ({"instances": [{"b64": "%%%"}]}, BYTES, "invalid base64"),
    ({"instances": [3]}, BYTES, "expected strings"),
    ({"inputs": "abc"}, BYTES, "must have shape"),
    ({"instances": [[[[1, 2, 3]]], [[[1, 2]]]]}, PIXELS, "input 'images'"),
    ({"instances": [[[1, 2, 3]]]}, PIXELS, r"shape \[\?, \?, \?, 3\]"),
    ({"instances": [[[[1, 2, 256]]]]}, PIXELS, "out of the uint8 range"),
    ({"instances": [[[[1, 2, -1]]]]}, PIXELS, "out of the uint8 range"),
    ({"instances": [[[[1, 2, 3.5]]]]}, PIXELS, "expected uint8"),
    ({"instances": [[[["a", 2, 3]]]]}, PIXELS, "expected uint8"),
    ({"inputs": [[1.0, 2.0, 3.0]]}, FLOATS, r"shape \[\?, 2\]"),
    ({"inputs": {"a": [1]}}, TWO, "must have the keys"),
    ({"instances": [{"a": 1}]}, TWO, "keys"),
    ({"inputs": {"a": [1, 2], "b": [1.0]}}, TWO, "different batch sizes"),
    ({"inputs": {"a": [], "b": []}}, TWO, "empty batch"),
    ({"inputs": [[float("nan"), 1.0]]}, FLOATS, "NaN or infinite"),
    ({"inputs": [[1.0, float("inf")]]}, FLOATS, "NaN or infinite"),
])
def test_bad_requests_raise_400(request_body, specs, match):
    with pytest.raises(ServingError, match=match) as info:
        rest.request_inputs(request_body, specs)
    assert info.value.status == 400


@pytest.mark.parametrize("body", [
    b"{", b"[1]", b"\xff\xfe", b"null",
    b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"])
def test_parse_body_refuses_non_objects(body):
    with pytest.raises(rest.RequestError) as info:
        rest.parse_body(body)
    assert info.value.status == 400


@pytest.mark.parametrize("depth", [200, 900])
def test_deeply_nested_values_raise_400(depth):
    request = json.loads("[" * depth + "1" + "]" * depth)
    for specs in (FLOATS, BYTES):
        with pytest.raises(ServingError) as info:
            rest.request_inputs({"instances": request}, specs)
        assert info.value.status == 400


def test_signature_name_defaults_and_checks():
    assert rest.signature_name({}) == "serving_default"
    with pytest.raises(rest.RequestError, match="signature_name"):
        rest.signature_name({"signature_name": 3})


def test_responses_in_row_and_columnar_format():
    outputs = {"scores": np.array([[0.5], [0.25]], np.float32),
               "class_names": np.array([[b"cat"], [b"dog"]], dtype=object),
               "raw_bytes": np.array([b"\xff", b"a"], dtype=object)}
    rows = rest.response_body(outputs, row_format=True)
    assert rows["predictions"][1] == {
        "class_names": ["dog"], "raw_bytes": b64(b"a"), "scores": [0.25]}
    cols = rest.response_body(outputs, row_format=False)
    assert cols["outputs"]["class_names"] == [["cat"], ["dog"]]
    assert cols["outputs"]["raw_bytes"][0] == b64(b"\xff")
    json.dumps(rows), json.dumps(cols)


def test_single_output_is_unwrapped():
    outputs = {"y": np.array([1, 2], np.int32)}
    assert rest.response_body(outputs, True) == {"predictions": [1, 2]}
    assert rest.response_body(outputs, False) == {"outputs": [1, 2]}
