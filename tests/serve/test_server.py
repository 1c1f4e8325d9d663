"""End-to-end tests of the REST server with a real HTTP client."""

import base64
import inspect
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests

from tests.export import contract_model
from tests.serve.conftest import bomb_png
from tests.serve.conftest import free_port
from tests.serve.conftest import publish
from tfcnn import cli
from tfcnn.data import features
from tfcnn.serve import inputs
from tfcnn.serve import server as server_lib

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def url(model_base):
    with server_lib.BackgroundServer(model_base, max_body_bytes=LIMIT,
                                     poll_seconds=0.2) as running:
        yield running.url


def b64(data):
    return {"b64": base64.b64encode(data).decode()}


def _image():
    return contract_model.encoded_images(1)[0]


def test_binds_to_loopback_by_default(url):
    assert url.startswith("http://127.0.0.1:")
    assert inspect.signature(server_lib.serve).parameters["host"].default \
        == "127.0.0.1"


def test_model_status(url):
    for path in ("/v1/models/tiny", "/v1/models/tiny/versions/1"):
        answer = requests.get(url + path, timeout=30)
        assert answer.status_code == 200
        assert answer.json() == {"model_version_status": [{
            "version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]}


def test_model_metadata(url):
    for path in ("/v1/models/tiny/metadata",
                 "/v1/models/tiny/versions/1/metadata"):
        answer = requests.get(url + path, timeout=30).json()
        assert answer["model_spec"] == {"name": "tiny", "signature_name": "",
                                        "version": "1"}
        signatures = answer["metadata"]["signature_def"]["signature_def"]
        assert sorted(signatures) == ["__saved_model_init_op",
                                      "predict_examples", "predict_images",
                                      "predict_images_uint8",
                                      "serving_default"]
        default = signatures["serving_default"]
        assert default["method_name"] == "tensorflow/serving/predict"
        assert default["outputs"]["class_names"]["dtype"] == "DT_STRING"


def _predict(url, body, path="/v1/models/tiny:predict"):
    return requests.post(url + path, json=body, timeout=60)


def test_predict_row_format_with_b64_bytes(url):
    answer = _predict(url, {"instances": [b64(_image()), b64(_image())]})
    assert answer.status_code == 200
    predictions = answer.json()["predictions"]
    assert len(predictions) == 2
    assert predictions[0]["class_names"][0] == "ant"
    assert predictions[0]["class_ids"][0] == 0
    assert sum(predictions[0]["probabilities"]) == pytest.approx(1, 1e-5)


def test_predict_columnar_format_and_explicit_version(url):
    answer = _predict(url, {"inputs": {"image_bytes": [b64(_image())]}},
                      "/v1/models/tiny/versions/1:predict")
    assert answer.status_code == 200
    outputs = answer.json()["outputs"]
    assert outputs["class_names"][0][0] == "ant"
    assert np.asarray(outputs["probabilities"]).shape == (1, 3)


def test_predict_other_signatures(url):
    pixels = np.full((1, 20, 30, 3), 100, np.uint8).tolist()
    for signature in ("predict_images", "predict_images_uint8"):
        answer = _predict(url, {"signature_name": signature,
                                "instances": pixels})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["class_ids"][0] == 0
    example = features.make_example(
        _image(), image_format="png", height=0, width=0, label=0, text="",
        filename="a.png").SerializeToString()
    answer = _predict(url, {"signature_name": "predict_examples",
                            "instances": [{"examples": b64(example)}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["class_names"][0] == "ant"


def _post_raw(url, path, data):
    return requests.post(url + path, data=data, timeout=60,
                         headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("method,path,body,status,match", [
    ("POST", "/v1/models/tiny:predict", b"{not json", 400, "malformed"),
    ("POST", "/v1/models/tiny:predict", b'["x"]', 400, "JSON object"),
    ("POST", "/v1/models/tiny:predict",
     {"signature_name": "predict_images_uint8", "instances": [[[1, 2, 3]]]},
     400, "shape"),
    ("POST", "/v1/models/tiny:predict",
     {"signature_name": "predict_images_uint8",
      "instances": [[[[0.5, 2, 3]]]]}, 400, "expected uint8"),
    ("POST", "/v1/models/tiny:predict", {"instances": [5]}, 400,
     "expected strings"),
    ("POST", "/v1/models/tiny:predict",
     {"instances": [{"b64": base64.b64encode(b"nope").decode()}]}, 400,
     "image file format"),
    ("POST", "/v1/models/tiny:predict",
     {"signature_name": "nope", "instances": [1]}, 400, "not found"),
    ("POST", "/v1/models/tiny:predict", b"x" * (LIMIT + 1), 413,
     "larger than the limit"),
    ("POST", "/v1/models/other:predict", {"instances": [1]}, 404,
     "Servable not found"),
    ("POST", "/v1/models/tiny/versions/9:predict", {"instances": [1]},
     404, "version 9"),
    ("GET", "/v1/models/tiny/versions/9", None, 404, "version 9"),
    ("GET", "/v1/models/tiny/versions/0", None, 404, "integer from 1"),
    ("GET", "/v1/models/tiny/versions/9223372036854775808", None, 404,
     "integer from 1 to 9223372036854775807"),
    ("GET", "/v1/models/tiny/labels/stable", None, 400, "label 'stable'"),
    ("GET", "/v1/models/nope/metadata", None, 404, "nope"),
    ("GET", "/v1/models/..%2F..%2Fetc%2Fpasswd", None, 404, ""),
    ("GET", "/v1/models/%2E%2E", None, 404, ""),
    ("GET", "/v1/models/.publish.lock", None, 404, ""),
    ("GET", "/v1/models/tiny:predict", None, 400,
     "Malformed request: GET /v1/models/tiny:predict"),
    ("POST", "/v1/models/tiny:classify", {"instances": [1]}, 400,
     "unknown request keys ['instances']"),
    ("POST", "/v1/models/tiny:regress", {"examples": [{"x": 1}]}, 400,
     "no 'outputs' output"),
    ("POST", "/v1/models/tiny:classify", {"examples": [{"x": [1, "a"]}]},
     400, "feature 'x'"),
    ("POST", "/v1/models/tiny:explain", {"instances": [1]}, 404,
     "unsupported method 'explain'"),
    ("PUT", "/v1/models/tiny", None, 405, ""),
    ("GET", "/v2/anything", None, 404, ""),
])
def test_bad_requests_get_a_4xx_json_error(url, method, path, body,
                                           status, match):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    answer = requests.request(method, url + path, data=body, timeout=60,
                              headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert isinstance(error, str) and match in error
    # The server is still up and answering.
    assert requests.get(url + "/v1/models/tiny",
                        timeout=30).status_code == 200


def test_bytes_that_are_no_example_are_a_client_error(url, caplog):
    caplog.set_level(logging.INFO)
    answer = _predict(url, {"signature_name": "predict_examples",
                            "instances": [{"examples": {"b64": "//4="}}]})
    assert answer.status_code == 400, answer.text
    assert "internal" not in answer.json()["error"]
    assert not [r for r in caplog.records if r.exc_info]


def test_unknown_model_names_share_one_metrics_label(model_base):
    with server_lib.BackgroundServer(model_base) as running:
        for i in range(30):
            requests.post(running.url + f"/v1/models/m{i}%00:predict",
                          json={"instances": [1]}, timeout=30)
            requests.get(running.url + f"/v1/models/n{i}", timeout=30)
        requests.get(running.url + "/v1/models/tiny", timeout=30)
        metrics = requests.get(
            running.url + "/monitoring/prometheus/metrics", timeout=30).text
    names = {line.split('model_name="')[1].split('"')[0]
             for line in metrics.splitlines() if 'model_name="' in line}
    assert names == {"tiny", ""}
    assert ':tensorflow:serving:request_count{model_name="",' \
           'status="NOT_FOUND"} 60' in metrics


def test_a_kept_alive_connection_has_no_delayed_ack_stall(url):
    # Without TCP_NODELAY each response on a reused connection waits for
    # the client's delayed ACK: 40 ms or more on Linux, every time.
    times = []
    with requests.Session() as session:
        for _ in range(20):
            start = time.perf_counter()
            assert session.get(url + "/v1/models/tiny", timeout=30).ok
            times.append(time.perf_counter() - start)
    assert sorted(times)[len(times) // 2] < 0.010, times


def test_classify_takes_tf_servings_json_examples(url):
    def example(i):
        return {"image/encoded": b64(contract_model.encoded_images(
            2, seed=i)[0]), "image/height": 0, "image/width": 0,
                "image/class/label": 0, "image/class/text": "",
                "image/filename": "a.png"}

    answer = requests.post(url + "/v1/models/tiny:classify", timeout=60,
                           json={"context": {"image/format": "png"},
                                 "examples": [example(1), example(2)]})
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert len(result) == 2 and len(result[0]) == 2
    (label, score), (_, second) = result[0]
    assert label == "ant" and score >= second
    # The same answer as gRPC Classify and :predict on predict_examples.
    pairs = requests.post(url + "/v1/models/tiny:predict", timeout=60, json={
        "signature_name": "predict_examples",
        "instances": [{"examples": b64(features.make_example(
            contract_model.encoded_images(2, seed=1)[0],
            image_format="png", height=0, width=0, label=0, text="",
            filename="a.png").SerializeToString())}]}).json()
    prediction = pairs["predictions"][0]
    assert [label for label, _ in result[0]] == prediction["class_names"]
    np.testing.assert_allclose([s for _, s in result[0]],
                               prediction["scores"], atol=1e-6)


def test_a_new_version_is_served_without_a_restart(tmp_path):
    publish(tmp_path, "swap", favour=0)
    with server_lib.BackgroundServer(tmp_path, poll_seconds=0.1) as running:
        predict = running.url + "/v1/models/swap:predict"
        body = {"instances": [b64(_image())]}

        def top(path=predict):
            answer = requests.post(path, json=body, timeout=60)
            assert answer.status_code == 200, answer.text
            return answer.json()["predictions"][0]["class_names"][0]

        assert top() == "ant"
        publish(tmp_path, "swap", favour=2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = requests.get(running.url + "/v1/models/swap",
                                  timeout=30).json()
            if status["model_version_status"][0]["version"] == "2":
                break
            time.sleep(0.1)
        assert top() == "cat"
        old = requests.post(
            running.url + "/v1/models/swap/versions/1:predict", json=body,
            timeout=60)
        assert old.status_code == 404  # the default policy: newest only


def test_serve_refuses_a_missing_export_dir(tmp_path):
    with pytest.raises(server_lib.ServeError, match="does not exist"):
        server_lib.serve(tmp_path / "missing", port=0)


def test_bad_max_body_bytes(tmp_path):
    with pytest.raises(ValueError, match="Received: max_body_bytes=0"):
        server_lib.create_app(tmp_path, max_body_bytes=0)


@pytest.mark.slow
def test_serving_imports_no_heavy_tfcnn_module():
    code = ("import sys, tfcnn.serve.server, tfcnn.serve.predict; "
            "print(' '.join(m for m in sys.modules if m.startswith('tfcnn')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True)
    loaded = set(done.stdout.split())
    allowed = {"tfcnn", "tfcnn.errors", "tfcnn.atomic_files",
               "tfcnn.storage", "tfcnn.export", "tfcnn.export.arguments",
               "tfcnn.export.layout"}
    assert {m for m in loaded if not m.startswith("tfcnn.serve")} <= allowed
    assert "tfcnn.serve.server" in loaded


# Hostile requests -------------------------------------------------------------

def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_an_image_bomb_is_refused_from_its_header(url):
    before = _rss_bytes()
    for _ in range(3):
        answer = _predict(url, {"instances": [b64(bomb_png())]})
        assert answer.status_code == 413, answer.text
        assert "max_pixels" in answer.json()["error"]
        example = features.make_example(
            bomb_png(), image_format="png", height=0, width=0, label=0,
            text="", filename="bomb.png").SerializeToString()
        answer = _predict(url, {"signature_name": "predict_examples",
                                "instances": [{"examples": b64(example)}]})
        assert answer.status_code == 413, answer.text
    # Decoding one 20000x20000 image would take 1.2 GB at least.
    assert _rss_bytes() - before < 200 * 2**20


def test_the_instance_count_is_capped(model_base):
    with server_lib.BackgroundServer(model_base, limits=inputs.Limits(
            max_instances=4)) as running:
        body = {"instances": [b64(_image())] * 5}
        answer = _predict(running.url, body)
        assert answer.status_code == 413
        assert "max_instances=4" in answer.json()["error"]
        body["instances"] = body["instances"][:4]
        assert _predict(running.url, body).status_code == 200


def test_deep_json_and_nan_pixels_get_400_without_a_traceback(url, caplog):
    deep = b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    answer = _post_raw(url, "/v1/models/tiny:predict", deep)
    assert answer.status_code == 400
    assert "nested too deeply" in answer.json()["error"]
    nan = json.dumps({"signature_name": "predict_images",
                      "instances": [[[[float("nan"), 1.0, 2.0]]]]})
    answer = _post_raw(url, "/v1/models/tiny:predict", nan.encode())
    assert answer.status_code == 400
    assert "NaN or infinite" in answer.json()["error"]
    assert not [r for r in caplog.records if r.exc_info]


def _raw_connection(url):
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_slow_headers_and_bodies_are_timed_out(model_base, caplog):
    caplog.set_level(logging.INFO, logger="tfcnn.serve.server")
    with server_lib.BackgroundServer(model_base, header_timeout_s=0.3,
                                     body_timeout_s=0.3) as running:
        with _raw_connection(running.url) as slow_headers:
            slow_headers.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\n")
            answer = slow_headers.recv(4096)
            assert answer.startswith(b"HTTP/1.1 408")
            assert slow_headers.recv(4096) == b""  # closed
        with _raw_connection(running.url) as slow_body:
            slow_body.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\n"
                              b"Host: x\r\nContent-Length: 100\r\n\r\n{")
            answer = b""
            while chunk := slow_body.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408")
            assert b"not received within 0.3 s" in answer
    assert any("no complete request headers" in r.getMessage()
               for r in caplog.records)


def test_a_client_disconnect_is_one_log_line(url, caplog):
    caplog.set_level(logging.INFO)
    with _raw_connection(url) as gone:
        gone.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"inst")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
            "disconnected" in r.getMessage() for r in caplog.records):
        time.sleep(0.05)
    records = [r for r in caplog.records if r.levelno >= logging.INFO
               and r.name.startswith(("tfcnn", "uvicorn"))]
    assert [r.getMessage() for r in records if "disconnected" in
            r.getMessage()]
    assert not [r for r in records if r.exc_info or r.levelno
                >= logging.ERROR]
    assert requests.get(url + "/v1/models/tiny", timeout=30).ok


def test_work_of_a_client_that_left_is_dropped_and_logged(model_base,
                                                         caplog):
    from tfcnn.serve import config

    caplog.set_level(logging.INFO, logger="tfcnn.serve.server")
    body = json.dumps({"instances": [b64(_image())]}).encode()
    params = config.BatchingParameters(max_batch_size=8,
                                       batch_timeout_micros=1_500_000)
    with server_lib.BackgroundServer(model_base,
                                     batching=params) as running:
        with _raw_connection(running.url) as gone:
            gone.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\n"
                         b"Host: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            deadline = time.monotonic() + 10
            while running.inference.in_flight < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        deadline = time.monotonic() + 20
        while running.inference.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        batchers = running.repository.get("tiny").batchers.values()
        assert sum(b.calls for b in batchers) == 0
        metrics = requests.get(
            running.url + "/monitoring/prometheus/metrics", timeout=30).text
    assert [r for r in caplog.records
            if "disconnected before the answer" in r.getMessage()]
    assert 'model_name="tiny",status="CANCELLED"} 1' in metrics


def test_under_another_asgi_server_a_client_that_left_is_dropped(
        model_base, caplog):
    """``serve``'s protocol tells a request that its connection is lost;
    under another ASGI server the app watches ``receive`` instead."""
    import asyncio

    from tfcnn.serve import config

    caplog.set_level(logging.INFO, logger="tfcnn.serve.server")
    params = config.BatchingParameters(max_batch_size=8,
                                       batch_timeout_micros=1_500_000)
    app = server_lib.create_app(model_base, batching=params)
    body = json.dumps({"instances": [b64(_image())]}).encode()
    scope = {"type": "http", "method": "POST",
             "path": "/v1/models/tiny:predict", "client": ("127.0.0.1", 9),
             "headers": [(b"content-length", str(len(body)).encode())]}
    assert server_lib._CONNECTION_LOST not in scope
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        if messages:
            return messages.pop()
        # The client leaves while its request waits for a batch.
        await asyncio.sleep(0.2)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    app.state.repository.start()
    try:
        asyncio.run(app(scope, receive, send))
        batchers = app.state.repository.get("tiny").batchers.values()
        assert sum(b.calls for b in batchers) == 0
    finally:
        app.state.repository.stop()
    assert sent[0]["status"] == 499
    assert [r for r in caplog.records
            if "disconnected before the answer" in r.getMessage()]


def test_serve_on_a_port_in_use_is_one_line(model_base, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert cli.main(["serve", str(model_base), "--rest_api_port",
                         str(port), "--port", "0"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tfcnn serve: error: can't listen for REST "
                              f"on 127.0.0.1:{port}")
        assert len(err.strip().splitlines()) == 1
        assert cli.main(["serve", str(model_base), "--rest_api_port",
                         str(free_port()), f"--port={port}"]) == 2
        assert "can't listen for gRPC" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_answers_every_request_in_flight_then_exits_0(model_base):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    proc = subprocess.Popen(
        [sys.executable, "-m", "tfcnn.cli", "serve", str(model_base),
         f"--rest_api_port={free_port()}", "--port=0",
         "--max-batch-size", "64", "--batch-timeout-micros", "2000000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("tfcnn serve: loaded tiny version 1 from ")
        line = proc.stdout.readline()
        rest_url = "http://" + line.split("http://")[1].split("/v1/")[0]
        target = line.strip().rsplit("gRPC at ", 1)[1]
        image = _image()
        results = []

        def rest_call():
            results.append(requests.post(
                rest_url + "/v1/models/tiny:predict",
                json={"instances": [b64(image)]}, timeout=60).status_code)

        def grpc_call():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "tiny"
            request.inputs["image_bytes"].CopyFrom(
                tf.make_tensor_proto([image]))
            with grpc.insecure_channel(target) as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(
                    channel)
                response = stub.Predict(request, timeout=60)
                results.append(200 if response.outputs else 0)

        threads = [threading.Thread(target=fn)
                   for fn in (rest_call, grpc_call) * 3]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # all six wait in the 2 s batch window
        proc.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        assert proc.wait(60) == 0
        assert results == [200] * 6
        assert "stopped after answering" in proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()


def test_a_model_config_file_serves_labels_over_rest(tmp_path):
    from tfcnn.serve import config

    publish(tmp_path, "m", favour=0)
    publish(tmp_path, "m", favour=2)
    path = tmp_path / "models.config"
    path.write_text('model_config_list { config { name: "m" base_path: "m" '
                    'model_version_policy { all {} } '
                    'version_labels { key: "stable" value: 1 } } }')
    with server_lib.BackgroundServer(
            None, model_configs=config.read_model_config_file(
                path)) as running:
        body = {"instances": [b64(_image())]}
        for where, top in (("labels/stable", "ant"), ("versions/2", "cat"),
                           ("versions/1", "ant")):
            answer = requests.post(
                f"{running.url}/v1/models/m/{where}:predict", json=body,
                timeout=60)
            assert answer.json()["predictions"][0]["class_names"][0] == top
        status = requests.get(running.url + "/v1/models/m/labels/stable",
                              timeout=30).json()
        assert [s["version"] for s in status["model_version_status"]] == \
            ["1"]


def test_a_malformed_model_config_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "models.config"
    path.write_text("model_config_list { config { name: 'm' } }")
    assert cli.main(["serve", "--model-config-file", str(path)]) == 2
    assert "base_path is empty" in capsys.readouterr().err


@pytest.fixture
def serve_calls(monkeypatch):
    """Runs `tfcnn serve` flags up to the server; records what it got."""
    calls = []
    monkeypatch.setattr(server_lib, "serve",
                        lambda *args, **kwargs: calls.append(kwargs))
    return calls


def test_tf_serving_flags_keep_their_meanings(model_base, tmp_path,
                                              serve_calls):
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 16 }")
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/m" }')
    assert cli.main([
        "serve", "--port=8500", "--rest_api_port=8501", "--model_name=tiny",
        f"--model_base_path={model_base / 'tiny'}", "--enable_batching",
        f"--batching_parameters_file={batching}",
        "--file_system_poll_wait_seconds=0",
        "--rest_api_timeout_in_ms=2500",
        f"--monitoring_config_file={monitoring}"]) == 0
    (got,) = serve_calls
    assert (got["port"], got["grpc_port"]) == (8501, 8500)
    assert (got["model_name"], got["model_base_path"]) == (
        "tiny", str(model_base / "tiny"))
    options = got["options"]
    assert options.batching.max_batch_size == 16
    assert options.poll_seconds == 0
    assert options.request_timeout_s == 2.5
    assert options.metrics_path == "/m"
    assert options.access_log is False
    assert cli.main(["serve", str(model_base), "--rest_api_port=0",
                     f"--batching_parameters_file={batching}",
                     "--enable_batching=false", "--access-log"]) == 0
    got = serve_calls[-1]
    assert got["port"] is None and got["grpc_port"] == 8500
    assert got["options"].batching is None
    assert got["options"].access_log is True


def test_tensorflow_thread_flags_set_its_pools(model_base, serve_calls,
                                               monkeypatch):
    import tensorflow as tf

    threads = {}
    for pool in ("intra_op", "inter_op"):
        monkeypatch.setattr(
            tf.config.threading, f"set_{pool}_parallelism_threads",
            lambda n, pool=pool: threads.__setitem__(pool, n))
    assert cli.main(["serve", str(model_base)]) == 0
    assert threads == {}
    assert cli.main(["serve", str(model_base),
                     "--tensorflow_intra_op_parallelism=1",
                     "--tensorflow-inter-op-parallelism", "2"]) == 0
    assert threads == {"intra_op": 1, "inter_op": 2}
    assert len(serve_calls) == 2


@pytest.mark.parametrize("flags,match", [
    (["--port", "70000"], "--port (gRPC) must be a port number"),
    (["--grpc-port", "70000"], "--port (gRPC) must be a port number"),
    (["--rest_api_port=70000"], "--rest_api_port must be a port number"),
    (["--rest_api_port=-5"], "--rest_api_port must be a port number"),
    (["--rest_api_port=0", "--port=-1"], "nothing to serve on"),
    (["--model_name=x"], "--model_name needs --model_base_path"),
    (["--rest_api_timeout_in_ms=0"], "must be > 0"),
    (["--tensorflow_intra_op_parallelism=-1"],
     "--tensorflow_intra_op_parallelism must be >= 0"),
])
def test_bad_serve_flags_are_one_line_and_exit_2(model_base, capsys,
                                                 serve_calls, flags, match):
    assert cli.main(["serve", str(model_base), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfcnn serve: error: ") and match in err
    assert len(err.strip().splitlines()) == 1
    assert not serve_calls


def test_a_model_folder_as_export_root_is_refused_with_a_hint(model_base,
                                                              capsys):
    assert cli.main(["serve", str(model_base / "tiny"),
                     f"--rest_api_port={free_port()}", "--port=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfcnn serve: error: nothing servable: no model "
                          f"version loaded from {model_base / 'tiny'}; ")
    assert f"--model_base_path={model_base / 'tiny'}" in err
    assert len(err.splitlines()) == 1


def test_the_monitoring_config_moves_or_hides_the_metrics(model_base):
    with server_lib.BackgroundServer(model_base,
                                     metrics_path="/m") as running:
        assert requests.get(running.url + "/m", timeout=30).ok
        assert requests.get(running.url + "/monitoring/prometheus/metrics",
                            timeout=30).status_code == 404
    with server_lib.BackgroundServer(model_base,
                                     metrics_path=None) as running:
        assert requests.get(running.url + "/monitoring/prometheus/metrics",
                            timeout=30).status_code == 404


@pytest.mark.slow
def test_tf_servings_docker_flags_with_its_stubs_and_curl(model_base):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    # The flags of TF Serving's Docker example (tensorflow_model_server
    # --port=8500 --rest_api_port=8501 --model_name=${MODEL_NAME}
    # --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME}), on free ports.
    grpc_port, rest_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfcnn.cli", "serve", f"--port={grpc_port}",
         f"--rest_api_port={rest_port}", "--model_name=my_model",
         f"--model_base_path={model_base / 'tiny'}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline() == (
            f"tfcnn serve: loaded my_model version 1 from "
            f"{model_base / 'tiny' / '1'}\n")
        assert "REST at" in proc.stdout.readline()
        image = base64.b64encode(_image()).decode()
        curl = subprocess.run(
            ["curl", "-s", "-d", json.dumps({"instances": [{"b64": image}]}),
             "-X", "POST",
             f"http://127.0.0.1:{rest_port}/v1/models/my_model:predict"],
            capture_output=True, text=True, timeout=60, check=True)
        rest = json.loads(curl.stdout)["predictions"][0]
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "my_model"
        request.inputs["image_bytes"].CopyFrom(
            tf.make_tensor_proto([_image()]))
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = stub.Predict(request, timeout=60)
        assert tf.make_ndarray(response.outputs["class_ids"])[0].tolist() \
            == rest["class_ids"]
        assert rest["class_names"][0] == "ant"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        proc.wait()
