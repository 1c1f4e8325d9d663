"""Tests of model discovery, loading and hot-swapping."""

import shutil

import pytest

from tests.serve.conftest import publish
from tfcnn.serve import repository


def test_versions_appear_and_disappear_on_refresh(tmp_path):
    publish(tmp_path, "m", favour=0)
    models = repository.ModelRepository(tmp_path)
    models.refresh()
    assert models.get("m").version == 1
    publish(tmp_path, "m", favour=2)
    models.refresh()
    assert models.get("m").version == 2
    assert models.get("m", 1).version == 1
    assert [s["version"] for s in models.status("m")] == ["2", "1"]
    shutil.rmtree(tmp_path / "m" / "2")
    models.refresh()
    assert models.get("m").version == 1
    with pytest.raises(repository.NotFoundError, match="version 2"):
        models.get("m", 2)


def test_a_broken_version_is_reported_and_others_keep_serving(tmp_path):
    publish(tmp_path, "m")
    broken = tmp_path / "m" / "7"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"garbage")
    models = repository.ModelRepository(tmp_path)
    models.refresh()
    models.refresh()  # not retried while unchanged
    assert models.get("m").version == 1
    states = {s["version"]: s for s in models.status("m")}
    assert states["1"]["state"] == "AVAILABLE"
    assert states["7"]["state"] == "END"
    assert states["7"]["status"]["error_message"]
    assert models.status("m", 7)[0]["status"]["error_code"] == "UNKNOWN"


def test_unknown_names_and_metadata(tmp_path):
    publish(tmp_path, "m")
    models = repository.ModelRepository(tmp_path)
    models.refresh()
    assert models.names() == ["m"]
    for name in ("x", "../m", ""):
        with pytest.raises(repository.NotFoundError):
            models.get(name)
        with pytest.raises(repository.NotFoundError):
            models.status(name)
    signature_def = models.get("m").signature_def["signature_def"]
    assert "__saved_model_init_op" not in signature_def
    inputs = signature_def["serving_default"]["inputs"]
    assert inputs["image_bytes"]["dtype"] == "DT_STRING"


def test_poll_seconds_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="Received: poll_seconds=0"):
        repository.ModelRepository(tmp_path, poll_seconds=0)
