"""Tests for tfcnn.data.manifest."""

import json

import pytest

from tests.data import image_files
from tests.data import reference_shards
from tfcnn.data.classification_ingest import ingest
from tfcnn.data.manifest import Manifest
from tfcnn.errors import DataError


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest")
    image_files.make_class_folders(root / "src", ("ant", "bee", "cat"),
                                   per_class=5)
    ingest(root / "src", root / "out", num_shards=2, workers=1,
           progress=False)
    return root / "out"


def test_load_our_manifest(ingested):
    manifest = Manifest.load(ingested)
    assert manifest.class_names == ["ant", "bee", "cat"]
    assert manifest.num_classes == 3
    assert manifest.splits == ("train", "validation")
    assert manifest.count("train") + manifest.count("validation") == 15
    assert manifest.has_split("train") and not manifest.has_split("test")
    files = manifest.files("train")
    assert files == [str(ingested / "train-00000-of-00002.tfrecord"),
                     str(ingested / "train-00001-of-00002.tfrecord")]
    assert all(len(s["sha256"]) == 64 for s in manifest.shards("train"))
    assert sum(manifest.class_counts("train").values()) == manifest.count(
        "train")
    assert manifest.stats_path is None
    assert manifest.label_offset == 0
    data = manifest.to_dict()
    assert data["schema"]["features"]["image/encoded"] == "string"
    assert data["source"].endswith("src")
    assert data["labels"] == {"ant": 0, "bee": 1, "cat": 2}


def test_unknown_split_is_named(ingested):
    with pytest.raises(DataError, match="split 'test' not in .*it has: "
                                        "train, validation"):
        Manifest.load(ingested).files("test")


def test_missing_and_invalid_manifests_name_the_path(tmp_path):
    with pytest.raises(DataError, match=f"no manifest.json in {tmp_path}"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="manifest.json is not valid JSON"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"splits": {}}))
    with pytest.raises(DataError, match="missing key 'class_names'"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"class_names": ["a"], "splits": {"train": {
            "count": 1, "shards": [{"name": "../escape"}]}}}))
    with pytest.raises(DataError, match="bad shard entry"):
        Manifest.load(tmp_path)


def test_with_stats_returns_a_copy(ingested):
    manifest = Manifest.load(ingested)
    copy = manifest.with_stats("stats.npz")
    assert copy.stats_path == ingested / "stats.npz"
    assert manifest.stats_path is None  # the original is unchanged


def test_from_shards_of_reference_tools(tmp_path):
    reference_shards.write_reference_shards(tmp_path, "train", 2, 4)
    reference_shards.write_reference_shards(tmp_path, "validation", 1, 3)
    manifest = Manifest.from_shards(tmp_path, num_classes=3, label_offset=-1)
    assert not manifest.from_file
    assert manifest.class_names == ["0", "1", "2"]
    assert (manifest.count("train"), manifest.count("validation")) == (8, 3)
    assert [f.rsplit("/", 1)[1] for f in manifest.files("train")] == [
        "train-00000-of-00002", "train-00001-of-00002"]
    assert manifest.label_offset == -1
    assert manifest.stats_path is None


def test_from_shards_labels_file(tmp_path):
    reference_shards.write_reference_shards(tmp_path, "train", 1, 3)
    labels = tmp_path / "synsets.txt"
    labels.write_text("\n".join(reference_shards.SYNSETS) + "\n")
    manifest = Manifest.from_shards(tmp_path, labels_file=labels,
                                    label_offset=-1)
    assert manifest.class_names == list(reference_shards.SYNSETS)


def test_one_based_labels_without_offset_are_a_clear_error(tmp_path):
    reference_shards.write_reference_shards(tmp_path, "train", 1, 3)
    with pytest.raises(DataError, match=r"train-00000-of-00001: label 3 with "
                                        r"label_offset=0 falls outside "
                                        r"\[0, 3\).*label_offset=-1"):
        Manifest.from_shards(tmp_path, num_classes=3)
    with pytest.raises(DataError, match="label 0 with label_offset=-1"):
        reference_shards.write_reference_shards(tmp_path, "train", 1, 3,
                                                first_label=0)
        Manifest.from_shards(tmp_path, num_classes=3, label_offset=-1)


def test_from_shards_infers_classes_from_labels(tmp_path):
    reference_shards.write_reference_shards(tmp_path, "train", 1, 4,
                                            first_label=0)
    manifest = Manifest.from_shards(tmp_path)
    assert manifest.class_names == ["0", "1", "2"]
    (tmp_path / "labels.txt").write_text("tench\ngoldfish\nshark\nray\n")
    assert Manifest.from_shards(tmp_path).class_names == [
        "tench", "goldfish", "shark", "ray"]


def test_inferred_classes_reject_one_based_labels(tmp_path):
    reference_shards.write_reference_shards(tmp_path, "train", 1, 4)
    with pytest.raises(DataError, match="no record has label 0.*"
                                        "label_offset=-1"):
        Manifest.from_shards(tmp_path)
    manifest = Manifest.from_shards(tmp_path, label_offset=-1)
    assert manifest.num_classes == 3


def test_from_shards_argument_errors(tmp_path):
    with pytest.raises(DataError, match="no shards named"):
        Manifest.from_shards(tmp_path, num_classes=3)
    with pytest.raises(DataError, match="at most one of"):
        Manifest.from_shards(tmp_path, num_classes=3, class_names=["a"])
    with pytest.raises(DataError, match="num_classes must be a positive"):
        Manifest.from_shards(tmp_path, num_classes=0)


@pytest.mark.parametrize("alias", ["val", "valid", "eval"])
def test_val_shards_are_the_validation_split(tmp_path, alias, capsys):
    """DeepLab's converters and others name validation shards ``val-*``."""
    from tfcnn.data import readers

    reference_shards.write_reference_shards(tmp_path, "train", 1, 3)
    written = reference_shards.write_reference_shards(tmp_path, alias, 2, 2)
    manifest = Manifest.from_shards(tmp_path, label_offset=-1)
    assert manifest.splits == ("train", "validation")
    assert manifest.count("validation") == 4
    assert [s["name"] for s in manifest.shards("validation")] == [
        f"{alias}-00000-of-00002", f"{alias}-00001-of-00002"]
    labels = [int(label) for _, label in readers.read_shards(
        manifest, "validation").as_numpy_iterator()]
    assert sorted(labels) == sorted(label - 1 for _, label in written)
    assert "warning" not in capsys.readouterr().err


def test_shards_of_no_known_split_are_reported(tmp_path, capsys):
    reference_shards.write_reference_shards(tmp_path, "dev", 1, 2)
    with pytest.raises(DataError, match=(
            r"validation \(val, valid, eval\).*it holds shards of no known "
            r"split: dev-\*")):
        Manifest.from_shards(tmp_path, label_offset=-1)
    reference_shards.write_reference_shards(tmp_path, "train", 1, 3)
    manifest = Manifest.from_shards(tmp_path, label_offset=-1)
    assert manifest.splits == ("train",)
    err = capsys.readouterr().err
    assert f"warning: {tmp_path}: shards dev-* match no split" in err
