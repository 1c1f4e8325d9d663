"""Tests of server-side request batching."""

import base64
import threading
import time

import numpy as np
import pytest
import requests

from tests.export import contract_model
from tfcnn.errors import ServingError
from tfcnn.errors import StatusCode
from tfcnn.serve import batching
from tfcnn.serve import config
from tfcnn.serve import server as server_lib


def _concurrently(count, fn):
    results = [None] * count
    errors = [None] * count

    def run(i):
        try:
            results[i] = fn(i)
        except Exception as error:  # noqa: BLE001
            errors[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, errors


def _batcher(function, **params):
    return batching.Batcher(function, config.BatchingParameters(**params),
                            threading.Semaphore(1))


def test_concurrent_requests_are_merged_and_split_back():
    sizes = []

    def double(inputs):
        sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2, "n": inputs["x"].sum(axis=1)}

    batcher = _batcher(double, max_batch_size=64,
                       batch_timeout_micros=300_000)
    results, errors = _concurrently(8, lambda i: batcher.run(
        {"x": np.full((i % 3 + 1, 2), i, np.float32)}, i % 3 + 1))
    assert errors == [None] * 8
    for i, outputs in enumerate(results):
        np.testing.assert_array_equal(
            outputs["y"], np.full((i % 3 + 1, 2), 2 * i, np.float32))
        np.testing.assert_array_equal(outputs["n"], [2 * i] * (i % 3 + 1))
    assert batcher.calls < 8 and sum(sizes) == sum(i % 3 + 1
                                                   for i in range(8))


def test_a_failing_request_fails_alone_not_its_batch():
    def reject_negative(inputs):
        if (inputs["x"] < 0).any():
            raise ServingError("negative input")
        return {"y": inputs["x"] * 2}

    batcher = _batcher(reject_negative, max_batch_size=64,
                       batch_timeout_micros=300_000)
    results, errors = _concurrently(8, lambda i: batcher.run(
        {"x": np.full((1, 2), -1 if i == 3 else i, np.float32)}, 1))
    assert [str(e) if e else None for e in errors] == \
        [None] * 3 + ["negative input"] + [None] * 4
    for i, outputs in enumerate(results):
        if i != 3:
            np.testing.assert_array_equal(outputs["y"], [[2 * i, 2 * i]])


def test_batches_are_padded_to_an_allowed_size():
    sizes = []

    def identity(inputs):
        sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] + 1}

    batcher = _batcher(identity, max_batch_size=8,
                       allowed_batch_sizes=(4, 8),
                       batch_timeout_micros=300_000)
    results, errors = _concurrently(3, lambda i: batcher.run(
        {"x": np.full((1, 2), i, np.float32)}, 1))
    assert errors == [None] * 3
    assert set(sizes) <= {4, 8}
    for i, outputs in enumerate(results):
        np.testing.assert_array_equal(outputs["y"], [[i + 1, i + 1]])


def test_only_same_shaped_requests_are_merged():
    shapes = []

    def record(inputs):
        shapes.append(inputs["x"].shape)
        return {"y": inputs["x"]}

    batcher = _batcher(record, max_batch_size=64,
                       batch_timeout_micros=300_000)
    _, errors = _concurrently(6, lambda i: batcher.run(
        {"x": np.zeros((1, 2 + i % 2), np.float32)}, 1))
    assert errors == [None] * 6
    assert all(shape[1] in (2, 3) for shape in shapes)
    assert sum(shape[0] for shape in shapes) == 6


def test_a_full_queue_and_a_passed_deadline_are_refused():
    release = threading.Event()

    def slow(inputs):
        release.wait(10)
        return {"y": inputs["x"]}

    batcher = _batcher(slow, max_batch_size=2, max_enqueued_batches=1,
                       batch_timeout_micros=0)
    x = {"x": np.zeros((1, 1), np.float32)}
    first = threading.Thread(target=batcher.run, args=(x, 1))
    first.start()
    time.sleep(0.2)  # the first call runs and holds the only slot
    outcomes = []
    waiting = [threading.Thread(target=lambda d=d: outcomes.append(
        _error_of(lambda: batcher.run(x, 1, d)))) for d in (
            time.monotonic() + 0.1, None)]
    for thread in waiting:
        thread.start()
    time.sleep(0.3)  # both are queued (2 rows: the queue is full)
    with pytest.raises(ServingError) as info:
        batcher.run(x, 1)
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED
    release.set()
    first.join(10)
    for thread in waiting:
        thread.join(10)
    expired = [outcome for outcome in outcomes if outcome is not None]
    assert len(outcomes) == 2 and len(expired) == 1
    assert expired[0].code is StatusCode.DEADLINE_EXCEEDED


def _error_of(fn):
    try:
        fn()
    except ServingError as error:
        return error
    return None


def _b64(data):
    return {"b64": base64.b64encode(data).decode()}


def test_batched_answers_equal_unbatched_ones(model_base):
    images = contract_model.encoded_images(8, seed=9)
    pixels = [np.random.default_rng(i).integers(
        0, 256, (1, 40, 36, 3)).tolist() for i in range(8)]

    def ask(url, i):
        if i % 2:
            body = {"signature_name": "predict_images_uint8",
                    "instances": pixels[i]}
        else:
            body = {"instances": [_b64(images[i])]}
        answer = requests.post(url + "/v1/models/tiny:predict", json=body,
                               timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()["predictions"][0]

    with server_lib.BackgroundServer(model_base) as plain:
        expected = [ask(plain.url, i) for i in range(8)]
    params = config.BatchingParameters(max_batch_size=8,
                                       batch_timeout_micros=500_000)
    with server_lib.BackgroundServer(model_base,
                                     batching=params) as batched:
        results, errors = _concurrently(8, lambda i: ask(batched.url, i))
        served = batched.repository.get("tiny")
        calls = sum(b.calls for b in served.batchers.values())
    assert errors == [None] * 8
    assert calls < 8
    for got, want in zip(results, expected):
        assert got["class_ids"] == want["class_ids"]
        np.testing.assert_allclose(got["probabilities"],
                                   want["probabilities"], atol=1e-6)


def test_an_undecodable_image_answers_only_its_own_request(model_base):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    good = contract_model.encoded_images(1)[0]
    bad = b"not an image"
    params = config.BatchingParameters(max_batch_size=8,
                                       batch_timeout_micros=500_000)
    with server_lib.BackgroundServer(model_base, grpc_port=0,
                                     batching=params) as running:
        url = running.url + "/v1/models/tiny:predict"
        channel = grpc.insecure_channel(running.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def rest(i):
            data = bad if i == 0 else good
            return requests.post(url, json={"instances": [_b64(data)]},
                                 timeout=60).status_code

        def grpc_call(i):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "tiny"
            request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(
                [bad if i == 0 else good]))
            try:
                stub.Predict(request, timeout=60)
            except grpc.RpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        statuses, errors = _concurrently(8, rest)
        codes, grpc_errors = _concurrently(8, grpc_call)
        channel.close()
    assert errors == grpc_errors == [None] * 8
    assert statuses == [400] + [200] * 7
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT] + \
        [grpc.StatusCode.OK] * 7


def test_overload_gets_429_and_resource_exhausted_never_5xx(model_base):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    params = config.BatchingParameters(max_batch_size=64,
                                       batch_timeout_micros=1_500_000)
    body = {"instances": [_b64(contract_model.encoded_images(1)[0])]}
    with server_lib.BackgroundServer(model_base, grpc_port=0,
                                     batching=params,
                                     max_in_flight=2) as running:
        url = running.url + "/v1/models/tiny:predict"
        results, _ = [], None
        waiting = [threading.Thread(target=lambda: results.append(
            requests.post(url, json=body, timeout=60).status_code))
            for _ in range(2)]
        for thread in waiting:
            thread.start()
        deadline = time.monotonic() + 10
        while running.inference.in_flight < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        refused = requests.post(url, json=body, timeout=60)
        assert refused.status_code == 429
        assert "retry later" in refused.json()["error"]
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(
            [contract_model.encoded_images(1)[0]]))
        with grpc.insecure_channel(running.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(request, timeout=60)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for thread in waiting:
                thread.join(60)
            assert results == [200, 200]
            assert stub.Predict(request, timeout=60).outputs
        metrics = requests.get(
            running.url + "/monitoring/prometheus/metrics", timeout=30).text
    assert ':tensorflow:serving:request_count{model_name="tiny",' \
           'status="RESOURCE_EXHAUSTED"} 2' in metrics
    assert ':tensorflow:serving:request_count{model_name="tiny",' \
           'status="OK"} 3' in metrics
    assert ':tensorflow:serving:request_latency_count{model_name="tiny",' \
           'API="predict",entrypoint="GRPC"} 2' in metrics


def test_a_bad_request_is_refused_before_it_joins_a_batch(model_base,
                                                          monkeypatch):
    queued, apart = [], []
    run, run_apart = batching.Batcher.run, batching.Batcher._run_apart

    def recording_run(self, inputs, *args, **kwargs):
        queued.append(inputs)
        return run(self, inputs, *args, **kwargs)

    def recording_run_apart(self, batch):
        apart.append(batch)
        return run_apart(self, batch)

    monkeypatch.setattr(batching.Batcher, "run", recording_run)
    monkeypatch.setattr(batching.Batcher, "_run_apart", recording_run_apart)
    good = contract_model.encoded_images(1, fmt="jpeg")[0]
    bads = [b"not an image", b"", good[:len(good) // 2]]
    params = config.BatchingParameters(max_batch_size=8,
                                       batch_timeout_micros=300_000)
    with server_lib.BackgroundServer(model_base,
                                     batching=params) as running:
        url = running.url + "/v1/models/tiny:predict"
        for bad in bads:
            answers, errors = _concurrently(8, lambda i: requests.post(
                url, json={"instances": [_b64(bad if i == 0 else good)]},
                timeout=60))
            assert errors == [None] * 8
            assert [a.status_code for a in answers] == [400] + [200] * 7
            assert "instance 0 is not a decodable image" in \
                answers[0].json()["error"]
        not_an_example = requests.post(url, json={
            "signature_name": "predict_examples",
            "instances": [{"examples": _b64(b"\xff\xfe")}]}, timeout=60)
    assert not_an_example.status_code == 400
    assert "is not a serialized tf.Example" in \
        not_an_example.json()["error"]
    assert apart == []
    assert len(queued) == 21
    assert all(inputs["image_bytes"][0] == good for inputs in queued)
