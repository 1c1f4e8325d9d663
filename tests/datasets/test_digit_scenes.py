"""Tests for tfcnn.datasets.digit_scenes: the embedded segmentation dataset."""

import numpy as np
import pytest
from PIL import Image

from tfcnn import tasks
from tfcnn.data.manifest import Manifest
from tfcnn.datasets import digit_scenes

VOID = digit_scenes.IGNORE_VALUE


def test_scenes_are_masks_of_their_digits(tmp_path):
    out = tmp_path / "scenes"
    summary = digit_scenes.write_digit_scenes(out, num_train=12, num_test=4,
                                              seed=3)
    assert summary["train"] == 12 and summary["test"] == 4
    assert (out / "classes.txt").read_text().splitlines() == list(
        digit_scenes.CLASS_NAMES)
    for split, count in (("train", 12), ("test", 4)):
        names = sorted(p.name for p in (out / split / "masks").iterdir())
        assert names == sorted(p.name for p in (out / split /
                                                "images").iterdir())
        assert len(names) == count
        for name in names:
            image = np.asarray(Image.open(out / split / "images" / name))
            mask = np.asarray(Image.open(out / split / "masks" / name))
            assert image.shape == (64, 64, 3) and mask.shape == (64, 64)
            assert set(np.unique(mask)) <= set(range(11)) | {VOID}
            digits = (mask > 0) & (mask != VOID)
            assert digits.any() and (mask == 0).any()
            # Ink is brighter than the background it is drawn over.
            grey = image.mean(axis=2)
            assert grey[digits].mean() > grey[mask == 0].mean() + 40
    # Complete: a second call keeps what is there.
    before = (out / "train/images/00000.png").read_bytes()
    digit_scenes.write_digit_scenes(out, num_train=12, num_test=4, seed=9)
    assert (out / "train/images/00000.png").read_bytes() == before


def test_scenes_ingest_as_segmentation_shards(tmp_path):
    out = tmp_path / "scenes"
    digit_scenes.write_digit_scenes(out, num_train=20, num_test=5)
    data = tasks.ingest(out, tmp_path / "shards", workers=1,
                        progress=False)
    manifest = Manifest.load(tmp_path / "shards")
    assert data["skipped"] == []
    assert manifest.task == "segmentation"
    assert manifest.class_names == list(digit_scenes.CLASS_NAMES)
    assert manifest.count("train") == 18 and manifest.count("test") == 5
    assert manifest.count("validation") == 2
    assert manifest.pixel_counts("train")["background"] > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="digit_sizes"):
        digit_scenes.write_digit_scenes("unused", digit_sizes=(40, 80))
    with pytest.raises(ValueError, match="num_train"):
        digit_scenes.write_digit_scenes("unused", num_train=0)


def test_run_prepares_ingests_and_computes_stats(tmp_path, monkeypatch):
    import functools

    from tfcnn import recipe as recipe_lib
    from tfcnn import run
    from tfcnn.data import stats

    monkeypatch.setattr(digit_scenes, "write_digit_scenes", functools.partial(
        digit_scenes.write_digit_scenes, num_train=10, num_test=3))
    recipe = recipe_lib.recipe_from_dict({
        "data": {"source": "digit_scenes",
                 "path": str(tmp_path / "scenes"), "resize_size": 64,
                 "crop_size": 64},
        "augment": {"mean": "channel"},
        "train": {"model_dir": str(tmp_path / "run")}})
    stages = run._stages(recipe)[:3]
    assert [s.__name__ for s in stages] == [
        "_prepare_digit_scenes", "_ingest", "_stats"]
    keep = run._Force(every_stage=False, training=False)
    lines = [stage(recipe, keep).message for stage in stages]
    assert "wrote 10 train and 3 test scenes" in lines[0]
    loaded = stats.load_stats(recipe.data.shard_dir)
    assert loaded.num_images == 9 and loaded.resize_size == 64
    # Run again: each stage sees its output complete.
    assert all(stage(recipe, keep).skipped for stage in stages)
    # predict's held-out image: a test scene, with no one true class.
    (tmp_path / "run").mkdir()
    path, truth = run._held_out_image(recipe)
    assert truth is None
    assert Image.open(path).size == (64, 64)
