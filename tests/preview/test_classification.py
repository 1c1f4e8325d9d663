"""Tests for tfcnn.preview.classification and tfcnn.preview.grid
(``tfcnn preview``)."""

import numpy as np
import pytest
from PIL import Image

from tests.data import shard_files
from tfcnn import recipe as recipe_lib
from tfcnn.data.classification_ingest import ingest
from tfcnn.preview import classification as preview
from tfcnn.preview import grid

RECIPE = recipe_lib.recipe_from_dict({
    "data": {"crop_size": 12, "resize_size": 16},
    "augment": {"pca_lighting": 0.0}})


def test_tiles_show_the_pixels_with_the_mean_added_back(tmp_path):
    # Constant images: any crop or flip of image i shows value 5 * i, and
    # the preview must show exactly that, whatever mean was subtracted.
    shard_files.write_shards(tmp_path, num_shards=1, per_shard=6)
    images, captions = preview.augmented_examples(tmp_path, RECIPE, count=6)
    assert images.dtype == np.uint8
    assert images.shape == (6, 12, 12, 3)
    values = images.reshape(6, -1)
    assert np.all(values.max(1) - values.min(1) <= 2)
    ids = np.round(values.mean(1) / 5).astype(int)
    assert sorted(ids) == list(range(6))
    # No manifest: classes are named by their label.
    assert captions == [str(i % 3) for i in ids]


def test_mixed_labels_name_two_classes(tmp_path):
    shard_files.write_shards(tmp_path, num_shards=1, per_shard=8)
    recipe = RECIPE.replace(augment={"mixup_alpha": 1.0})
    _, captions = preview.augmented_examples(tmp_path, recipe, count=8)
    assert any(" / " in caption for caption in captions)


def test_write_preview_with_a_manifest_and_overrides(tmp_path):
    source = tmp_path / "images"
    for name, value in (("cat", 40), ("dog", 200)):
        (source / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(shard_files.constant_image(value, 30, 40)).save(
                source / name / f"{i}.png")
    ingest(source, tmp_path / "shards", validation_split=0.0,
           workers=1)
    out = grid.write_preview(
        tmp_path / "shards", tmp_path / "grid.png", count=4,
        overrides=["data.crop_size=12", "data.resize_size=16",
                   "augment.flip=false"])
    picture = np.asarray(Image.open(out))
    assert picture.shape == (2 * (96 + 14 + 2) + 2, 2 * (96 + 2) + 2, 3)
    names = preview.augmented_examples(
        tmp_path / "shards", RECIPE, count=6)[1]
    assert sorted(set(names)) == ["cat", "dog"]


def test_bad_count(tmp_path):
    with pytest.raises(ValueError, match="Received: count=0"):
        preview.augmented_examples(tmp_path, RECIPE, count=0)


def test_command_reads_the_recipe_with_another_shard_folder(tmp_path,
                                                            capsys):
    from tfcnn import cli

    (tmp_path / "other").mkdir()
    shard_files.write_shards(tmp_path / "other", num_shards=1, per_shard=6)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(recipe_lib.dump_toml(RECIPE.replace(
        data={"shards": str(tmp_path / "missing")},
        augment={"mean": "none"})))
    out = tmp_path / "grid.png"
    assert cli.main(["preview", str(recipe), "--shards",
                     str(tmp_path / "other"), "--out", str(out)]) == 0
    assert out.is_file()
    assert cli.main(["preview", str(recipe), "--out", str(out)]) == 2
    assert "missing" in capsys.readouterr().err
