"""Tests for tfcnn.preview.segmentation (``tfcnn preview`` on masks)."""

import numpy as np
from PIL import Image

from tests.data import segmentation_files
from tfcnn import cli
from tfcnn import tasks
from tfcnn.preview import segmentation as segmentation_preview


def test_cli_preview_overlays_masks_of_ingested_pairs(tmp_path, capsys):
    src, shards = tmp_path / "src", tmp_path / "shards"
    segmentation_files.make_pairs(src, 6, num_classes=3)
    (src / "classes.txt").write_text("background\ncat\ndog\n")
    tasks.ingest(src, shards, workers=1, progress=False,
                 validation_split=0.0)
    tiles, captions = segmentation_preview.augmented_pairs(
        shards, _recipe(), count=4)
    assert tiles.shape == (4, 16, 32, 3)
    # Left: the augmented image; right: the same with the mask over it.
    left, right = tiles[:, :, :16], tiles[:, :, 16:]
    assert (left != right).any()
    assert all(set(c.split(", ")) <= {"background", "cat", "dog"}
               for c in captions)

    out = tmp_path / "grid.png"
    assert cli.main(["preview", str(shards), "--out", str(out),
                     "--count", "4", "--set", "data.resize_size=24",
                     "--set", "data.crop_size=16"]) == 0
    grid = np.asarray(Image.open(out))
    assert grid.ndim == 3 and grid.shape[1] > 2 * 16


def _recipe():
    from tfcnn import recipe as recipe_lib

    return recipe_lib.recipe_from_dict({
        "data": {"crop_size": 16, "resize_size": 24}})
