"""Tests of versioned, verified, atomic publishing."""

import json
import os
import subprocess
import sys
import threading

import keras
import pytest

from tests.export import contract_model
from tfcnn import cli
from tfcnn.errors import DataError
from tfcnn.errors import ExportError
from tfcnn.export import classification_serving as serving
from tfcnn.export import layout
from tfcnn.export import publish
from tfcnn.export import selfcheck


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Version 1 of 'tiny', exported with the full verification."""
    base = tmp_path_factory.mktemp("published")
    reports = []
    verify = publish.verify_saved_model

    def keep_report(*args):
        reports.append(verify(*args))
        return reports[-1]

    publish.verify_saved_model = keep_report
    try:
        path = publish.export_model(contract_model.build(), export_dir=base,
                                    name="tiny", top_k=2,
                                    class_names=contract_model.CLASS_NAMES)
    finally:
        publish.verify_saved_model = verify
    return base, path, reports[0]


def _entries(model_root):
    return sorted(os.listdir(model_root))


def test_first_export_is_version_1_with_warmup_and_metadata(published):
    base, path, _ = published
    assert path == base / "tiny" / "1"
    assert (path / "saved_model.pb").is_file()
    assert (path / "variables").is_dir()
    assert (path / layout.WARMUP_FILE).stat().st_size > 0
    metadata = json.loads((path / layout.METADATA_FILE).read_text())
    assert metadata["class_names"] == contract_model.CLASS_NAMES
    assert metadata["resize_size"] == contract_model.SIZE
    assert metadata["top_k"] == 2
    assert oct(path.stat().st_mode & 0o777) == oct(0o755)


def test_warmup_file_has_one_request_per_signature(published):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    _, path, _ = published
    signatures = []
    for record in tf.data.TFRecordDataset(str(path / layout.WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        assert log.predict_log.request.model_spec.name == "tiny"
        signatures.append(log.predict_log.request.model_spec.signature_name)
    assert sorted(signatures) == sorted(serving.SIGNATURES)


@pytest.mark.slow
def test_saved_model_cli_lists_the_signatures(published):
    _, path, _ = published
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    done = subprocess.run(
        [cli, "show", "--dir", str(path), "--all"], capture_output=True,
        text=True, check=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    for name in serving.SIGNATURES:
        assert f"signature_def['{name}']" in done.stdout
    assert "image_bytes" in done.stdout


def test_verification_ran_without_tfcnn_and_matched_keras(published):
    _, _, report = published
    assert report["ok"] and report["tfcnn_imported"] is False
    assert sorted(report["max_abs_diff"]) == sorted(serving.SIGNATURES)
    assert max(report["max_abs_diff"].values()) <= publish.VERIFY_ATOL


@pytest.fixture
def quick_write(monkeypatch):
    """Replaces the SavedModel writing by a stub: versioning tests only."""

    def write(serving_model, directory, **kwargs):
        (directory / "saved_model.pb").write_bytes(b"stub")

    monkeypatch.setattr(publish, "_write", write)


def test_versions_are_next_free_or_explicit_and_never_overwritten(
        tmp_path, quick_write):
    model = contract_model.build()

    def export(version=0):
        return publish.export_model(model, export_dir=tmp_path, name="m",
                                    version=version, verify=False)

    assert export().name == "1"
    assert export(5).name == "5"
    assert export().name == "6"
    before = (tmp_path / "m" / "5" / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(ExportError, match="already exists"):
        export(5)
    assert (tmp_path / "m" / "5" / "saved_model.pb").stat().st_mtime_ns \
        == before
    assert _entries(tmp_path / "m") == [".publish.lock", "1", "5", "6"]


def test_concurrent_exports_get_distinct_versions(tmp_path, quick_write):
    model = contract_model.build()
    paths = []

    def export():
        paths.append(publish.export_model(model, export_dir=tmp_path,
                                          name="m", verify=False).name)

    threads = [threading.Thread(target=export) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(paths) == ["1", "2", "3", "4"]


@pytest.mark.parametrize("stage,error", [
    ("_write", OSError), ("verify_saved_model", ExportError),
    ("verify_saved_model", KeyboardInterrupt)])
def test_a_failed_export_leaves_nothing_behind(tmp_path, monkeypatch,
                                              quick_write, stage, error):
    write = publish._write

    def fail(serving_model, directory, **kwargs):
        write(serving_model, directory)  # half-written, then it fails
        raise error("injected failure")

    monkeypatch.setattr(publish, stage, fail)
    with pytest.raises(error, match="injected"):
        publish.export_model(contract_model.build(), export_dir=tmp_path,
                             name="m")
    assert _entries(tmp_path / "m") == []


def test_the_check_reports_answers_that_differ(published, tmp_path,
                                              monkeypatch):
    _, path, _ = published
    # A negative tolerance makes every comparison fail; run the check in
    # this process (the child process is exercised by the fixture).
    monkeypatch.setattr(publish, "VERIFY_ATOL", -1.0)
    model = serving.ServingModel(contract_model.build(),
                                 contract_model.CLASS_NAMES, top_k=2)
    publish._write_cases(model, str(tmp_path))
    report = selfcheck.run(str(path), str(tmp_path))
    assert not report["ok"]
    assert len([p for p in report["problems"] if "differ from Keras" in p]) \
        == 2 * len(serving.SIGNATURES)


@pytest.mark.parametrize("stdout,returncode,match", [
    ('{"ok": false, "problems": ["x: differ"]}\n', 1, "x: differ"),
    ("", 1, "failed to load or run without tfcnn.*boom"),
])
def test_a_failed_check_raises_export_error(published, monkeypatch, stdout,
                                            returncode, match):
    _, path, _ = published

    def child(args, **kwargs):
        assert args[1] == "-I" and args[2] == selfcheck.__file__
        # The child runs in another directory: the path must be absolute.
        assert args[3] == str(path.absolute())
        return subprocess.CompletedProcess(args, returncode, stdout,
                                           "Traceback\nboom\n")

    monkeypatch.setattr(publish.subprocess, "run", child)
    model = serving.ServingModel(contract_model.build(),
                                 contract_model.CLASS_NAMES, top_k=2)
    monkeypatch.chdir(path.parent)
    with pytest.raises(ExportError, match=match):
        publish.verify_saved_model(model, path.name)


@pytest.mark.slow
def test_export_command_on_a_training_model_dir_with_tfcnn_layers(
        tmp_path):
    """model.keras + classes.json, with the real augment layers inside.

    The check in the fresh process proves the SavedModel runs tfcnn's own
    layers without tfcnn.
    """
    from tfcnn import augment
    from tfcnn import recipe

    keras.utils.set_random_seed(0)
    inputs = keras.Input((contract_model.SIZE, contract_model.SIZE, 3),
                         dtype="uint8", name="image")
    x = inputs
    for layer in augment.build_preprocessing(recipe.AugmentConfig(),
                                             crop_size=contract_model.CROP):
        x = layer(x)
    x = keras.layers.Conv2D(2, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax",
                                 dtype="float32")(x)
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    keras.Model(inputs, outputs).save(model_dir / "model.keras")
    (model_dir / "classes.json").write_text(
        json.dumps({"class_names": ["left", "right"]}))

    assert cli.main(["export", str(model_dir), "--name", "run",
                     "--export-dir", str(tmp_path / "sm")]) == 0
    path = tmp_path / "sm" / "run" / "1"
    metadata = json.loads((path / layout.METADATA_FILE).read_text())
    assert metadata["class_names"] == ["left", "right"]
    assert metadata["top_k"] == 2
    assert metadata["source"].endswith("model.keras")


@pytest.mark.parametrize("kwargs,match", [
    ({"name": "../x"}, "Received: name="),
    ({"name": "m", "version": -1}, "Received: version="),
    ({"name": "m", "version": "2"}, "Received: version="),
    ({"name": "m", "version": 2**63}, "1 to 9223372036854775807"),
    ({"name": "m", "version": 99999999999999999999}, "Received: version="),
])
def test_bad_arguments_are_refused_before_any_work(tmp_path, kwargs,
                                                   match):
    with pytest.raises(ValueError, match=match):
        publish.export_model(contract_model.build(), export_dir=tmp_path,
                             **kwargs)
    assert not os.listdir(tmp_path)


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.keras"):
        publish.export_model(tmp_path, export_dir=tmp_path / "sm",
                             name="m")


def test_a_model_of_no_task_is_refused_before_any_work(tmp_path):
    # [batch, steps, classes] is neither a classifier's nor a per-pixel
    # output: no serving model serves it.
    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(DataError, match="output_shape=\\(None, 4, 2\\)"):
        publish.export_model(model, export_dir=tmp_path, name="m")
    assert not os.listdir(tmp_path)


def test_bad_classes_json(tmp_path):
    contract_model.build().save(tmp_path / "model.keras")
    (tmp_path / "classes.json").write_text('{"class_names": [1, 2, 3]}')
    with pytest.raises(ExportError, match="class_names"):
        publish.export_model(tmp_path, export_dir=tmp_path / "sm",
                             name="m", verify=False)


def test_export_command_reports_a_bad_name_in_one_line(tmp_path, capsys):
    contract_model.build().save(tmp_path / "model.keras")
    assert cli.main(["export", str(tmp_path), "--name", "../up",
                     "--export-dir", str(tmp_path / "sm")]) == 2
    assert capsys.readouterr().err.startswith(
        "tfcnn export: error: name must be")


def test_export_command_with_a_huge_version_is_one_line(tmp_path, capsys):
    contract_model.build().save(tmp_path / "model.keras")
    assert cli.main(["export", str(tmp_path), "--name", "m", "--export-dir",
                     str(tmp_path / "sm"),
                     "--version", "99999999999999999999"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfcnn export: error: version must be an int "
                          "from 1 to 9223372036854775807")
    assert not (tmp_path / "sm").exists()


def test_export_into_a_read_only_folder_is_one_line(tmp_path, capsys,
                                                    monkeypatch):
    contract_model.build().save(tmp_path / "model.keras")
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() == 0:  # root writes anywhere; refuse as the kernel does
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(target))

        monkeypatch.setattr(publish.pathlib.Path, "mkdir", refuse)
    else:
        target.chmod(0o555)
    assert cli.main(["export", str(tmp_path), "--name", "m", "--export-dir",
                     str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tfcnn export: error: Permission denied")
    assert len(err) <= 2 and "Traceback" not in err  # progress, error
    target.chmod(0o755)
    assert not os.listdir(target)


def test_export_adds_the_model_to_a_model_config_file(
        tmp_path, quick_write, capsys, monkeypatch):
    from tfcnn.serve import config

    monkeypatch.setattr(publish, "verify_saved_model", lambda *args: {})
    contract_model.build().save(tmp_path / "model.keras")
    config_file = tmp_path / "models.config"
    for label in ("stable", "canary"):
        assert cli.main(["export", str(tmp_path), "--name", "m", "--export-dir",
                         str(tmp_path / "sm"), "--model-config-file",
                         str(config_file), "--label", label]) == 0
    # The verification takes ~15 s: a line says so before it starts.
    assert capsys.readouterr().err.count(
        "checking it in a fresh process") == 2
    (model,) = config.read_model_config_file(config_file)
    assert model.name == "m"
    assert model.base_path == tmp_path / "sm" / "m"
    assert dict(model.labels) == {"stable": 1, "canary": 2}
    assert model.policy == config.VersionPolicy()
