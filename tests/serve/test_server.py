"""End-to-end tests of the REST server with a real HTTP client."""

import base64
import inspect
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import requests

from tests.export import contract_model
from tests.serve.conftest import publish
from tfcnn.data import features
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
        assert sorted(signatures) == ["predict_examples", "predict_images",
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
    ("GET", "/v1/models/tiny/versions/0", None, 404, "positive integer"),
    ("GET", "/v1/models/tiny/labels/stable", None, 404, "labels"),
    ("GET", "/v1/models/nope/metadata", None, 404, "nope"),
    ("GET", "/v1/models/..%2F..%2Fetc%2Fpasswd", None, 404, ""),
    ("GET", "/v1/models/%2E%2E", None, 404, ""),
    ("GET", "/v1/models/.publish.lock", None, 404, ""),
    ("GET", "/v1/models/tiny:predict", None, 405, "use POST"),
    ("POST", "/v1/models/tiny:classify", {"instances": [1]}, 400,
     ":predict"),
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
        assert top(running.url + "/v1/models/swap/versions/1:predict") \
            == "ant"


def test_serve_refuses_a_missing_base_dir(tmp_path):
    with pytest.raises(NotADirectoryError, match="does not exist"):
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
    allowed = {"tfcnn", "tfcnn.errors", "tfcnn.export",
               "tfcnn.export.arguments", "tfcnn.export.layout"}
    assert {m for m in loaded if not m.startswith("tfcnn.serve")} <= allowed
    assert "tfcnn.serve.server" in loaded
