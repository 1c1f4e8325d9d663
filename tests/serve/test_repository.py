"""Tests of model discovery, loading and hot-swapping."""

import shutil

import pytest

from tests.serve.conftest import publish
from tfcnn.errors import ServingError
from tfcnn.errors import StatusCode
from tfcnn.serve import repository


def test_the_default_policy_serves_the_newest_version_only(tmp_path):
    publish(tmp_path, "m", favour=0)
    models = repository.ModelRepository(tmp_path)
    models.refresh()
    assert models.get("m").version == 1
    publish(tmp_path, "m", favour=2)
    models.refresh()
    assert models.get("m").version == 2
    with pytest.raises(repository.NotFoundError, match="version 1"):
        models.get("m", 1)
    assert [(s["version"], s["state"]) for s in models.status("m")] == [
        ("2", "AVAILABLE"), ("1", "END")]
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
    # As TF Serving's metadata: the init op too, and default values.
    assert signature_def["__saved_model_init_op"]["method_name"] == ""
    inputs = signature_def["serving_default"]["inputs"]
    assert inputs["image_bytes"]["dtype"] == "DT_STRING"
    assert inputs["image_bytes"]["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert signature_def["serving_default"]["defaults"] == {}


def test_poll_seconds_zero_looks_once_and_negative_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Received: poll_seconds=-1"):
        repository.ModelRepository(tmp_path, poll_seconds=-1)
    publish(tmp_path, "m")
    models = repository.ModelRepository(tmp_path, poll_seconds=0)
    models.start()
    try:
        assert models._thread is None
        assert [entry[:2] for entry in models.loaded()] == [("m", 1)]
    finally:
        models.stop()


def _configured(tmp_path, policy, labels=()):
    from tfcnn.serve import config

    return repository.ModelRepository(model_configs=[config.ModelConfig(
        "m", tmp_path / "m", policy, tuple(labels))])


def test_policies_load_and_unload_what_they_say(tmp_path):
    from tfcnn.serve import config

    for favour in (0, 1, 2):
        publish(tmp_path, "m", favour=favour)
    cases = [(config.VersionPolicy(num_versions=2), ["3", "2"]),
             (config.VersionPolicy(config.PolicyKind.ALL), ["3", "2", "1"]),
             (config.VersionPolicy(config.PolicyKind.SPECIFIC,
                                   versions=(1,)), ["1"])]
    for policy, available in cases:
        models = _configured(tmp_path, policy)
        models.refresh()
        assert [s["version"] for s in models.status("m")
                if s["state"] == "AVAILABLE"] == available
    models = _configured(tmp_path, config.VersionPolicy(num_versions=2))
    models.refresh()
    publish(tmp_path, "m", favour=0)
    models.refresh()
    states = {s["version"]: s["state"] for s in models.status("m")}
    assert states == {"4": "AVAILABLE", "3": "AVAILABLE", "2": "END"}


def test_labels_name_versions(tmp_path):
    from tfcnn.serve import config

    publish(tmp_path, "m", favour=0)
    publish(tmp_path, "m", favour=2)
    models = _configured(tmp_path, config.VersionPolicy(
        config.PolicyKind.ALL), [("stable", 1), ("canary", 2),
                                 ("gone", 9)])
    models.refresh()
    assert models.get("m", label="stable").version == 1
    assert models.get("m", label="canary").version == 2
    assert models.status("m", label="stable")[0]["version"] == "1"
    with pytest.raises(repository.NotFoundError, match="not loaded"):
        models.get("m", label="gone")
    # TF Serving answers a label its config lacks with INVALID_ARGUMENT.
    with pytest.raises(ServingError, match="label 'nope'") as info:
        models.get("m", label="nope")
    assert info.value.code is StatusCode.INVALID_ARGUMENT


def test_a_failed_newest_version_leaves_the_previous_serving(tmp_path):
    publish(tmp_path, "m")
    models = repository.ModelRepository(tmp_path)
    models.refresh()
    broken = tmp_path / "m" / "2"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"garbage")
    models.refresh()
    assert models.get("m").version == 1
    assert [s["state"] for s in models.status("m")] == ["END", "AVAILABLE"]


def test_a_version_copied_file_by_file_is_retried_until_it_loads(tmp_path):
    source = publish(tmp_path / "src", "m", favour=2)
    publish(tmp_path, "m", favour=0)
    models = repository.ModelRepository(tmp_path)
    models.refresh()
    copy = tmp_path / "m" / "2"
    copy.mkdir()
    # As `cp -r` does: saved_model.pb first, the variables later.
    shutil.copy2(source / "saved_model.pb", copy / "saved_model.pb")
    models.refresh()
    assert models.get("m").version == 1
    (failed,) = [s for s in models.status("m") if s["version"] == "2"]
    assert failed["state"] == "END" and failed["status"]["error_message"]
    for entry in source.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, copy / entry.name)
    models.refresh()
    assert models.get("m").version == 2
    assert models.status("m")[0] == {
        "version": "2", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}
