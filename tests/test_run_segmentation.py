"""End to end: the segmentation quickstart, shortened, as a user runs it."""

import json
import re

import pytest

from tests.data.segmentation_files import make_voc
from tests.test_run import NATIVE_LOG
from tests.test_run import _tfcnn
from tfcnn.datasets import digit_scenes

QUICKSTART = "quickstart_segmentation"
# Fewer epochs than the recipe's 40 (which reach mean IoU >= 0.75).
SHORT = ("--set", "train.epochs=4")


@pytest.mark.slow
def test_segmentation_quickstart_shortened(tmp_path):
    result = _tfcnn("run", QUICKSTART, *SHORT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for stage in ("prepare", "ingest", "stats", "train", "evaluate",
                  "export", "predict"):
        assert re.search(rf"^\[done\] {stage}:", result.stdout, re.M), \
            result.stdout
    assert not NATIVE_LOG.search(result.stderr), result.stderr

    metrics = json.loads(
        (tmp_path / "runs/quickstart_segmentation/metrics.json").read_text())
    assert metrics["task"] == "segmentation"
    assert metrics["split"] == "test" and metrics["num_examples"] == 200
    manifest = json.loads(
        (tmp_path / "data/digit_scenes_tfrecords/manifest.json").read_text())
    counts = manifest["splits"]["test"]["pixel_counts"]
    assert set(metrics["per_class_iou"]) == set(manifest["class_names"])
    # Background everywhere: background's IoU is its share of the pixels,
    # every other labelled class scores 0.
    present = [name for name, count in counts.items() if count]
    background = counts["background"] / sum(counts.values()) / len(present)
    assert metrics["mean_iou"] > max(0.3, 3 * background), (
        metrics, background)
    class_map = tmp_path / "runs/quickstart_segmentation"
    assert list(class_map.rglob("*_class_map.png")), result.stdout

    evaluated = _tfcnn("evaluate", QUICKSTART, "--json", *SHORT,
                       cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(evaluated.stdout)["mean_iou"] == pytest.approx(
        metrics["mean_iou"])


@pytest.mark.slow
def test_segmentation_recipe_runs_on_another_folder(tmp_path):
    digit_scenes.write_digit_scenes(tmp_path / "mine", num_train=40,
                                    num_test=8)
    result = _tfcnn(
        "run", QUICKSTART, "--set", "data.source=folder",
        "--set", "data.path=mine", "--set", "data.shards=mine_shards",
        "--set", "train.epochs=1", "--set", "train.steps_per_epoch=3",
        cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "mine_shards/manifest.json")
                          .read_text())
    assert manifest["task"] == "segmentation"
    assert re.search(r"^\[done\] predict:", result.stdout, re.M)


@pytest.mark.slow
def test_segmentation_recipe_runs_on_a_voc_folder(tmp_path):
    make_voc(tmp_path / "VOC2012", train=8, val=4)
    result = _tfcnn(
        "run", QUICKSTART, "--set", "data.source=folder",
        "--set", "data.path=VOC2012", "--set", "data.shards=voc_shards",
        "--set", "train.epochs=1", "--set", "train.steps_per_epoch=2",
        "--set", "train.batch_size=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "voc_shards/manifest.json")
                          .read_text())
    assert manifest["task"] == "segmentation"
    assert len(manifest["class_names"]) == 21
    assert manifest["class_names"][:2] == ["background", "aeroplane"]
    assert re.search(r"^\[done\] predict:", result.stdout, re.M)
    assert list((tmp_path / "runs").rglob("*_class_map.png"))
