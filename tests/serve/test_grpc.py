"""Tests of the gRPC API with TF Serving's own client stubs."""

import base64

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.export import contract_model
from tests.serve.conftest import bomb_png
from tfcnn.data import features
from tfcnn.serve import server as server_lib


@pytest.fixture(scope="module")
def running(model_base):
    with server_lib.BackgroundServer(model_base, grpc_port=0,
                                     poll_seconds=0.2) as server:
        channel = grpc.insecure_channel(server.grpc_target)
        server.predictions = prediction_service_pb2_grpc.\
            PredictionServiceStub(channel)
        server.model_service = model_service_pb2_grpc.ModelServiceStub(
            channel)
        yield server
        channel.close()


def _request(signature="serving_default", name="tiny", **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def _outputs(response):
    return {name: tf.make_ndarray(proto)
            for name, proto in response.outputs.items()}


def test_predict_matches_rest_exactly(running):
    images = contract_model.encoded_images(3, seed=4)
    response = running.predictions.Predict(
        _request(image_bytes=np.array(images, dtype=object)), timeout=60)
    assert response.model_spec.name == "tiny"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    outputs = _outputs(response)
    rest = requests.post(
        running.url + "/v1/models/tiny:predict", timeout=60,
        json={"inputs": [{"b64": base64.b64encode(i).decode()}
                         for i in images]}).json()["outputs"]
    assert sorted(outputs) == sorted(rest)
    np.testing.assert_array_equal(
        outputs["probabilities"],
        np.asarray(rest["probabilities"], np.float32))
    np.testing.assert_array_equal(outputs["class_ids"], rest["class_ids"])
    assert outputs["class_names"].tolist() == [
        [n.encode() for n in row] for row in rest["class_names"]]
    assert outputs["class_names"][0][0] == b"ant"


def test_predict_pixels_and_output_filter(running):
    request = _request("predict_images_uint8",
                       images=np.full((2, 20, 30, 3), 90, np.uint8))
    request.output_filter.append("class_ids")
    outputs = _outputs(running.predictions.Predict(request, timeout=60))
    assert list(outputs) == ["class_ids"]
    assert outputs["class_ids"][:, 0].tolist() == [0, 0]


def test_classify_takes_tf_examples(running):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tiny"
    for data in contract_model.encoded_images(2):
        example = features.make_example(
            data, image_format="png", height=0, width=0, label=0, text="",
            filename="a.png")
        request.input.example_list.examples.add().CopyFrom(example)
    response = running.predictions.Classify(request, timeout=60)
    assert response.model_spec.signature_name == "predict_examples"
    results = response.result.classifications
    assert len(results) == 2
    assert results[0].classes[0].label == "ant"
    assert results[0].classes[0].score >= results[0].classes[1].score


def test_model_metadata_and_status(running):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "tiny"
    request.metadata_field.append("signature_def")
    response = running.predictions.GetModelMetadata(request, timeout=60)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert sorted(signatures.signature_def) == [
        "__saved_model_init_op", "predict_examples", "predict_images",
        "predict_images_uint8", "serving_default"]
    assert signatures.signature_def["serving_default"].inputs[
        "image_bytes"].dtype == tf.string.as_datatype_enum
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "tiny"
    answer = running.model_service.GetModelStatus(status, timeout=60)
    (version,) = answer.model_version_status
    assert version.version == 1
    assert version.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert version.status.error_code == 0


@pytest.mark.parametrize("request_fn,code,match", [
    (lambda: _request(name="nope", image_bytes=[b"x"]), "NOT_FOUND",
     "nope"),
    (lambda: _request("nope", image_bytes=[b"x"]), "INVALID_ARGUMENT",
     "signature 'nope' not found"),
    (lambda: _request(image_bytes=[b"not an image"]), "INVALID_ARGUMENT",
     "image"),
    (lambda: _request(image_bytes=[bomb_png()]), "INVALID_ARGUMENT",
     "max_pixels"),
    (lambda: _request(images=[1.0]), "INVALID_ARGUMENT", "not an input"),
    (lambda: _request(), "INVALID_ARGUMENT", "inputs are"),
    (lambda: _request("predict_images_uint8",
                      images=np.zeros((1, 4, 4, 3), np.float32)),
     "INVALID_ARGUMENT", "must be uint8"),
    (lambda: _request("predict_images",
                      images=np.full((1, 4, 4, 3), np.nan, np.float32)),
     "INVALID_ARGUMENT", "NaN"),
    (lambda: _request("predict_images_uint8",
                      images=np.zeros((1, 4, 4), np.uint8)),
     "INVALID_ARGUMENT", "shape"),
])
def test_errors_carry_canonical_codes(running, request_fn, code, match):
    with pytest.raises(grpc.RpcError) as info:
        running.predictions.Predict(request_fn(), timeout=60)
    assert info.value.code() == getattr(grpc.StatusCode, code)
    assert match in info.value.details()


def _declared(signature, name, dtype, shape, **content):
    proto = tf.make_tensor_proto(np.zeros(0, dtype.as_numpy_dtype))
    proto.ClearField("tensor_content")
    proto.tensor_shape.Clear()
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    for field, values in content.items():
        if field == "tensor_content":
            proto.tensor_content = values
        else:
            getattr(proto, field).extend(values)
    request = _request(signature)
    request.inputs[name].CopyFrom(proto)
    return request


@pytest.mark.parametrize("request_fn,match", [
    # 40 bytes asking for 8000x8000 pixels, then for 112 GiB.
    (lambda: _declared("predict_images", "images", tf.float32,
                       [1, 8000, 8000, 3]), "max_pixels"),
    (lambda: _declared("predict_images", "images", tf.float32,
                       [1, 4000, 4000, 3]), "0 values"),
    (lambda: _declared("predict_images", "images", tf.float32,
                       [1, 100000, 100000, 3]), "max_pixels"),
    (lambda: _declared("predict_images", "images", tf.float32,
                       [1, 300, 300, 3], float_val=[0.5]), "1 values"),
    (lambda: _declared("predict_images", "images", tf.float32,
                       [5000, 1, 1, 3]), "max_instances"),
    # One image declared four times would be decoded four times.
    (lambda: _declared("serving_default", "image_bytes", tf.string, [4],
                       string_val=[contract_model.encoded_images(1)[0]]),
     "1 values"),
    (lambda: _declared("predict_images", "images", tf.float32,
                       [1, 2, 2, 3], tensor_content=b"\0" * 7),
     "tensor_content has 7 bytes"),
])
def test_declared_shapes_are_checked_before_allocation(running, request_fn,
                                                       match):
    with pytest.raises(grpc.RpcError) as info:
        running.predictions.Predict(request_fn(), timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert match in info.value.details()


def test_a_few_values_may_fill_a_small_shape(running):
    request = _declared("predict_images", "images", tf.float32,
                        [1, 8, 8, 3], float_val=[0.5])
    assert _outputs(running.predictions.Predict(request, timeout=60))


def test_unknown_version_and_label(running):
    request = _request(image_bytes=[b"x"])
    request.model_spec.version.value = 7
    with pytest.raises(grpc.RpcError) as info:
        running.predictions.Predict(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    request.model_spec.version_label = "stable"
    with pytest.raises(grpc.RpcError) as info:
        running.predictions.Predict(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Unrecognized servable version label" in info.value.details()


def test_regress_needs_an_outputs_output(running):
    from tensorflow_serving.apis import regression_pb2

    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "tiny"
    request.input.example_list.examples.add()
    with pytest.raises(grpc.RpcError) as info:
        running.predictions.Regress(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no 'outputs' output" in info.value.details()


def test_a_client_that_left_is_logged_and_its_work_dropped(model_base,
                                                         caplog):
    import logging
    import time

    from tfcnn.serve import config

    caplog.set_level(logging.INFO, logger="tfcnn.serve.grpc_api")
    params = config.BatchingParameters(max_batch_size=8,
                                       batch_timeout_micros=1_500_000)
    with server_lib.BackgroundServer(model_base, grpc_port=0,
                                     batching=params) as server:
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            images = contract_model.encoded_images(1, seed=2)
            # The client gives up after 0.3 s; the request waits 1.5 s in
            # the batch queue for company.
            with pytest.raises(grpc.RpcError) as gone:
                stub.Predict(_request(
                    image_bytes=np.array(images, dtype=object)), timeout=0.3)
            assert gone.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        deadline = time.monotonic() + 20
        while server.inference.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        batchers = server.repository.get("tiny").batchers.values()
        assert sum(b.calls for b in batchers) == 0
        metrics = requests.get(
            server.url + "/monitoring/prometheus/metrics", timeout=30).text
    lines = [r.getMessage() for r in caplog.records
             if "left before the answer" in r.getMessage()]
    assert len(lines) == 1 and "model 'tiny'" in lines[0], lines
    assert 'model_name="tiny",status="CANCELLED"} 1' in metrics


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.float32).reshape(1, 3, 4),
    np.array([[3, 1]], np.int32),
    np.arange(6, dtype=np.int64).reshape(2, 3)[:, ::2],  # not contiguous
    np.array([[True, False]]),  # make_tensor_proto's own path
    np.array([[0.5]], np.float32),  # one element: float_val there
    np.array([[b"ant", b"bee"]], dtype=object),
    np.array(b"scalar", dtype=object),
])
def test_tensor_proto_is_make_tensor_proto(array):
    from tfcnn.serve import grpc_api

    assert grpc_api.tensor_proto(array) == tf.make_tensor_proto(array)


@pytest.mark.parametrize("values", [
    [b"\x89PNG"], [[b"a", b"b"], [b"c", b"d"]], b"one"])
def test_string_protos_read_as_make_ndarray_does(values):
    from tfcnn.serve import grpc_api
    from tfcnn.serve import inputs

    proto = tf.make_tensor_proto(values)
    got = grpc_api._to_array("x", proto, inputs.Limits())
    want = tf.make_ndarray(proto)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tolist() == want.tolist()
