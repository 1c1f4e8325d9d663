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
