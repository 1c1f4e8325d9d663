"""Tests of tfcnn.storage and of shards, statistics and export on object
storage, through TensorFlow's in-memory ``ram://`` filesystem (no network).
"""

import json
import os

import keras
import pytest
import tensorflow as tf

from tests.data import image_files
from tests.export import contract_model
from tfcnn import atomic_files
from tfcnn import storage
from tfcnn.data import pipeline
from tfcnn.data import readers
from tfcnn.data import stats
from tfcnn.data.classification_ingest import ingest
from tfcnn.data.classification_ingest import is_complete
from tfcnn.data.manifest import Manifest
from tfcnn.export import layout
from tfcnn.export import publish
from tfcnn.run_folder import RunFolder


@pytest.fixture
def ram(tmp_path):
    """A ``ram://`` folder of its own for each test (the filesystem is
    shared by the whole process)."""
    url = f"ram://{tmp_path.name}"
    yield url
    if tf.io.gfile.exists(url):
        tf.io.gfile.rmtree(url)


def test_urls_stay_urls_and_local_paths_stay_paths(tmp_path):
    url = storage.path("gs://bucket/runs/")
    assert str(url) == "gs://bucket/runs"
    assert str(url / "a" / "b.json") == "gs://bucket/runs/a/b.json"
    assert (url / "b.json").name == "b.json"
    assert (url / "b.json").parent == url
    assert url.parent.parent == url.parent  # the bucket is the top
    assert str(atomic_files.temporary_path(url / "m.keras", ".keras")) == (
        "gs://bucket/runs/.m.keras.tmp.keras")
    assert storage.path(tmp_path) is tmp_path
    assert storage.path(str(tmp_path)) == tmp_path
    assert not storage.is_url(str(tmp_path))
    # No __fspath__: open() refuses instead of writing a local "gs:" folder.
    with pytest.raises(TypeError):
        open(url / "x", "w")


def test_url_files_read_write_list_and_raise_os_errors(ram):
    folder = storage.path(ram) / "a"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_files.write_json_atomic(folder / "x.json", {"k": 1})
    (folder / "log").write_text("one\ntwo\n")
    assert json.loads((folder / "x.json").read_text()) == {"k": 1}
    assert (folder / "log").read_text() == "one\ntwo\n"
    assert sorted(p.name for p in folder.iterdir()) == ["log", "x.json"]
    assert [p.name for p in folder.glob("*.json")] == ["x.json"]
    assert (folder / "log").stat().st_size == 8
    assert (folder / "x.json").is_file() and folder.is_dir()
    with pytest.raises(FileNotFoundError, match="nothing"):
        (folder / "nothing").read_text()
    with pytest.raises(FileNotFoundError, match="nothing"):
        (folder / "nothing").iterdir()
    assert (folder / "nothing").glob("*") == []
    (folder / "log").unlink()
    (folder / "log").unlink(missing_ok=True)
    assert not (folder / "log").exists()


def test_ingest_stats_and_reading_on_ram(tmp_path, ram):
    src, out = tmp_path / "src", f"{ram}/shards"
    paths = image_files.make_class_folders(src, ("ant", "bee"), 6,
                                           ("rgb_jpeg",))
    data = ingest(src, out, num_shards=2, workers=1, progress=False)
    assert sorted(tf.io.gfile.listdir(out)) == [
        "manifest.json", "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
        "validation-00000-of-00002.tfrecord",
        "validation-00001-of-00002.tfrecord"]  # no journal, no temporaries
    assert is_complete(out)
    again = ingest(src, out, num_shards=2, workers=1, progress=True)
    assert again == data and "already complete" in again.line

    computed = stats.compute_stats(out, resize_size=16, progress=False,
                                   batch_size=4)
    manifest = Manifest.load(out)
    assert str(manifest.stats_path) == f"{out}/stats.npz"
    loaded = stats.load_stats(out, resize_size=16)
    assert loaded.num_images == computed.num_images == 10
    assert manifest.count("train") == 10
    assert pipeline.list_shards(out, "train") == manifest.files("train")
    assert sum(1 for _ in readers.read_shards(out, "train")) + sum(
        1 for _ in readers.read_shards(out, "validation")) == len(paths)
    # Shards from other tools (no manifest) are described on ram:// too.
    tf.io.gfile.remove(f"{out}/manifest.json")
    assert Manifest.from_shards(out).count("train") == 10


def test_export_from_a_run_folder_on_ram(tmp_path, ram, monkeypatch):
    run = f"{ram}/run"
    tf.io.gfile.makedirs(run)
    contract_model.build().save(f"{run}/{RunFolder.MODEL}")
    with tf.io.gfile.GFile(f"{run}/{RunFolder.CLASSES}", "w") as f:
        f.write(json.dumps({"class_names": list(contract_model.CLASS_NAMES)}))
    # The SavedModel itself is written and checked by test_publish.py.
    written = {}

    def write(serving_model, directory, *, name, source):
        written.update(classes=serving_model.class_names, source=source)
        (directory / "saved_model.pb").write_bytes(b"")

    monkeypatch.setattr(publish, "_write", write)
    path = publish.export_model(run, export_dir=tmp_path, name="m",
                                verify=False, verbose=False)
    assert path == tmp_path / "m" / "1"
    assert written == {"classes": list(contract_model.CLASS_NAMES),
                       "source": f"{run}/{RunFolder.MODEL}"}
    assert layout.list_versions(tmp_path / "m") == [1]

    # The command finds the export name in the run's recipe.toml there.
    from tfcnn import cli
    from tfcnn import recipe as recipe_lib

    with tf.io.gfile.GFile(f"{run}/recipe.toml", "w") as f:
        f.write(recipe_lib.dump_toml(recipe_lib.load_recipe(
            "quickstart", ["export.name=from_recipe"])))
    monkeypatch.setattr(publish, "verify_saved_model", lambda *args: {})
    assert cli.main(["export", run, "--export-dir", str(tmp_path)]) == 0
    assert layout.list_versions(tmp_path / "from_recipe") == [1]


def test_export_dir_on_object_storage_is_refused(ram):
    with pytest.raises(ValueError, match=(
            r"export_dir must be a local folder.*Received: export_dir=ram")):
        publish.export_model(keras.Sequential(), export_dir=f"{ram}/sm",
                             name="m")
    assert not tf.io.gfile.exists(f"{ram}/sm")


def test_a_missing_model_on_ram_names_it(ram):
    with pytest.raises(FileNotFoundError,
                       match=f"no Keras model file at '{ram}/run'"):
        publish.export_model(f"{ram}/run", export_dir=os.devnull,
                             name="m")


@pytest.mark.slow
def test_run_with_shards_and_run_folder_on_ram(tmp_path, ram, capsys,
                                               monkeypatch):
    """Every stage of ``tfcnn run`` in one process, its shards and run
    folder on ram://; a second run finds them complete there."""
    from tests.test_cli_commands import recipe_file
    from tfcnn import cli

    monkeypatch.chdir(tmp_path)
    image_files.make_class_folders(tmp_path / "src", ("a", "b"), 4)
    shards, run = f"{ram}/shards", f"{ram}/run"
    recipe = recipe_file(tmp_path, data={"validation_split": 0.25,
                                         "shards": shards},
                         train={"model_dir": run})
    assert cli.main(["run", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "[done] ingest: wrote 8 records in 2 shards" in out, out
    assert f"wrote {shards}/stats.npz" in out, out
    assert "[done] predict: " in out, out
    assert {"checkpoints", "classes.json", "export.json", "logs",
            "metrics.json", "model.keras", "recipe.toml",
            "training.json"} <= set(tf.io.gfile.listdir(run))
    assert not tf.io.gfile.exists(f"{run}/backup")  # removed when done
    assert sorted(tf.io.gfile.listdir(f"{run}/checkpoints")) == [
        "best.keras", "last.keras", "state.json"]
    assert tf.io.gfile.glob(f"{run}/logs/train/events.out.tfevents.*")
    # Nothing landed in a local folder named after the URL.
    assert sorted(os.listdir(tmp_path)) == [
        "exports", "recipe.toml", "src"]
    assert layout.list_versions(tmp_path / "exports" / "tiny") == [1]

    assert cli.main(["run", str(recipe)]) == 0
    again = capsys.readouterr().out
    for stage in ("ingest", "stats", "train", "export"):
        assert f"[skip] {stage}: " in again, again
