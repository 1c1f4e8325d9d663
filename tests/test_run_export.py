"""``tfcnn run``'s export stage: skipped only for the same export."""

import json
import shutil
from pathlib import Path

import pytest

from tfcnn import recipe as recipe_lib
from tfcnn import run

KEEP = run._Force(every_stage=False, training=False)


@pytest.fixture
def fake_export(monkeypatch):
    """Replaces ``export_model`` by a stub that writes a version folder and
    records its arguments (the real one is tested in tests/export)."""
    calls = []

    def export_model(model_dir, *, export_dir, name, version, top_k):
        root = Path(export_dir) / name
        version = version or len(list(root.glob("[0-9]*"))) + 1
        path = root / str(version)
        path.mkdir(parents=True)
        (path / "saved_model.pb").write_bytes(b"")
        calls.append(dict(name=name, export_dir=str(export_dir),
                          version=version, top_k=top_k))
        return path.absolute()

    import tfcnn.export

    monkeypatch.setattr(tfcnn.export, "export_model", export_model,
                        raising=False)
    return calls


def _recipe(project, **export):
    return recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic"},
        "train": {"model_dir": str(project / "runs/a")},
        "export": {"export_dir": str(project / "saved_models"),
                   "name": "digits", "top_k": 3, **export},
    })


def _trained(project):
    model_dir = project / "runs/a"
    model_dir.mkdir(parents=True)
    (model_dir / "model.keras").write_bytes(b"weights")


def test_same_export_is_skipped(tmp_path, fake_export):
    _trained(tmp_path)
    recipe = _recipe(tmp_path)
    assert not run._export(recipe, KEEP).skipped
    report = run._export(recipe, KEEP)
    assert report.skipped and len(fake_export) == 1


def test_a_record_written_before_export_dir_still_skips(tmp_path,
                                                       fake_export):
    _trained(tmp_path)
    run._export(_recipe(tmp_path), KEEP)
    path = tmp_path / "runs/a/export.json"
    record = json.loads(path.read_text())
    record["dir"] = record.pop("export_dir")
    path.write_text(json.dumps(record))
    assert run._export(_recipe(tmp_path), KEEP).skipped


@pytest.mark.parametrize("change", [
    {"name": "digits_v2"}, {"top_k": 5}, {"version": 7}])
def test_another_name_top_k_or_version_is_exported(tmp_path, fake_export,
                                                    change):
    _trained(tmp_path)
    run._export(_recipe(tmp_path), KEEP)
    report = run._export(_recipe(tmp_path, **change), KEEP)
    assert not report.skipped
    assert len(fake_export) == 2


def test_another_export_dir_is_exported(tmp_path, fake_export):
    _trained(tmp_path)
    run._export(_recipe(tmp_path), KEEP)
    report = run._export(
        _recipe(tmp_path, export_dir=str(tmp_path / "elsewhere")), KEEP)
    assert not report.skipped
    assert report.result.is_relative_to(tmp_path / "elsewhere")


def test_copied_project_does_not_use_the_original_export(
        tmp_path, fake_export, monkeypatch):
    # Recipes name paths relative to the project folder they run in.
    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    monkeypatch.chdir(original)
    _trained(original)
    relative = recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic"},
        "train": {"model_dir": "runs/a"},
        "export": {"export_dir": "saved_models", "name": "digits", "top_k": 3}})
    run._export(relative, KEEP)
    # Only the run is copied: the copy has no export of its own yet.
    shutil.copytree(original / "runs", copy / "runs")
    monkeypatch.chdir(copy)

    report = run._export(relative, KEEP)

    assert not report.skipped
    assert (copy / "saved_models/digits/1").is_dir()
    record = json.loads((copy / "runs/a/export.json").read_text())
    assert str(original) not in json.dumps(record)


# The tflite stage (export.format = "tflite"): real conversions of a tiny
# network with the inference contract (uint8 image in, probabilities out).
def _tflite_recipe(project, **export):
    return _recipe(project, format="tflite", **export)


def _trained_network(project, units=2):
    import keras

    inputs = keras.Input((8, 8, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(units, activation="softmax")(x)
    model_dir = project / "runs/a"
    model_dir.mkdir(parents=True, exist_ok=True)
    keras.Model(inputs, outputs).save(model_dir / "model.keras")


def test_tflite_stage_only_with_the_tflite_format(tmp_path):
    assert run._tflite not in run._stages(_recipe(tmp_path))
    stages = run._stages(_tflite_recipe(tmp_path))
    assert stages.index(run._tflite) == stages.index(run._export) + 1
    assert stages[-1] is run._predict


def test_tflite_stage_writes_skips_and_finishes_an_interrupted_file(
        tmp_path):
    from tfcnn.export import tflite

    _trained_network(tmp_path)
    recipe = _tflite_recipe(tmp_path)
    path = tmp_path / "saved_models/digits.tflite"
    assert run.plan(recipe)[-2] == (
        f"tflite: would write the trained model to {path} (float32) unless "
        "it holds this model")

    report = run._tflite(recipe, KEEP)
    assert not report.skipped and report.result == path
    assert tflite.TFLiteModel(path).class_names == ["0", "1"]
    assert run._tflite(recipe, KEEP).skipped
    assert run.plan(recipe)[-2] == f"tflite: {path} holds this model: skipped"

    # Killed between its JSON and the rename of the .tflite: the JSON is
    # this model's, the file another (or none); the stage finishes it.
    written = path.read_bytes()
    path.write_bytes(b"an older conversion")
    assert not run._tflite(recipe, KEEP).skipped
    assert path.read_bytes() == written
    path.unlink()
    assert not run._tflite(recipe, KEEP).skipped
    assert run._tflite(recipe, KEEP).skipped

    # A quantized file has its own name; --force converts again.
    dynamic = run._tflite(_tflite_recipe(tmp_path, quantization="dynamic"),
                          KEEP)
    assert dynamic.result == tmp_path / "saved_models/digits_dynamic.tflite"
    forced = run._tflite(recipe, run._Force(True, True))
    assert not forced.skipped and path.read_bytes() == written


def test_another_models_tflite_is_refused_unless_retrained(tmp_path):
    from tfcnn.errors import DataError

    _trained_network(tmp_path)
    recipe = _tflite_recipe(tmp_path)
    run._tflite(recipe, KEEP)
    path = tmp_path / "saved_models/digits.tflite"
    before = path.read_bytes()
    # Another model in the run folder (retrained elsewhere): the file is
    # not this model's, and nothing replaces it unasked.
    _trained_network(tmp_path, units=3)
    assert run.plan(recipe)[-2] == (
        f"tflite: would stop with exit status 2: {path} holds another "
        "model's TFLite export (--force replaces it)")
    with pytest.raises(DataError, match="holds another model's TFLite "
                       "export; move it away, or replace it with"):
        run._tflite(recipe, KEEP)
    assert path.read_bytes() == before
    # Retrained in place (--overwrite) or --force: replaced.
    report = run._tflite(recipe, run._Force(False, True))
    assert not report.skipped and path.read_bytes() != before
