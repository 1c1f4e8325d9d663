"""Tests of tfcnn.train.inputs: recipes to datasets."""

import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.train.conftest import tiny_recipe
from tfcnn.errors import RecipeError
from tfcnn.recipe import Source
from tfcnn.train import inputs


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """3 classes x 10 PNGs, ingested (10% validation) with statistics."""
    from tfcnn.data import ingest
    from tfcnn.data import stats

    root = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    for c in range(3):
        folder = root / "images" / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 256, (24, 30, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    ingest.ingest(root / "images", root / "shards", validation_fraction=0.2,
                  workers=1, progress=False)
    stats.compute_stats(root / "shards", size=20, progress=False)
    return root / "shards"


def _shard_recipe(tmp_path, shards, **augment):
    recipe = tiny_recipe(tmp_path / "run", batch_size=4)
    return recipe.replace(
        data={"source": Source.TFRECORD, "path": str(shards)},
        augment=augment)


def test_shards_give_global_uint8_batches_and_counts(tmp_path, shards):
    data = inputs.training_inputs(_shard_recipe(tmp_path, shards))
    assert data.class_names == ["c0", "c1", "c2"]
    assert data.num_train_examples == 24
    assert data.steps_per_epoch == 24 // 4
    images, labels = next(iter(data.train))
    assert images.dtype == tf.uint8 and images.shape == (4, 20, 20, 3)
    assert labels.dtype == tf.int32 and labels.shape == (4,)
    assert data.validation_steps == math.ceil(6 / 4)
    seen = sum(int(y.shape[0]) for _, y in data.validation)
    assert seen == 6  # every validation image once, last batch partial
    assert data.stats is not None and data.stats.size == 20
    assert not data.dense_labels


def test_several_workers_read_whole_validation_batches(tmp_path, shards):
    data = inputs.training_inputs(_shard_recipe(tmp_path, shards),
                                  num_workers=2)
    assert data.validation_steps == 6 // 4
    for images, _ in data.validation.take(3):
        assert images.shape[0] == 4


def test_mixup_makes_dense_labels(tmp_path, shards):
    data = inputs.training_inputs(
        _shard_recipe(tmp_path, shards, mixup_alpha=0.2))
    assert data.dense_labels
    _, labels = next(iter(data.train))
    assert labels.shape == (4, 3)
    np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0, rtol=1e-5)
    _, labels = next(iter(data.validation))
    assert labels.shape[1] == 3


def test_evaluation_falls_back_to_validation(tmp_path, shards):
    data = inputs.evaluation_inputs(_shard_recipe(tmp_path, shards))
    assert (data.split, data.num_examples, data.steps) == ("validation", 6, 2)


def test_batch_larger_than_the_split_is_named(tmp_path, shards):
    recipe = _shard_recipe(tmp_path, shards).replace(
        train={"batch_size": 64})
    with pytest.raises(RecipeError, match="batch_size=64"):
        inputs.training_inputs(recipe)


def test_inception_crop_is_cut_on_the_host_in_training_only(tmp_path,
                                                            shards):
    recipe = _shard_recipe(tmp_path, shards, crop="inception")
    data = inputs.training_inputs(recipe)
    images, _ = next(iter(data.train))
    images = images.numpy()
    # image_size 16 in the centre of resize_size 20: offset 2, zeros around.
    assert images.shape[1:] == (20, 20, 3)
    assert images.sum() == images[:, 2:18, 2:18].sum()
    validation, _ = next(iter(data.validation))
    assert validation.numpy()[:, :2].any()  # whole images, not crops


def test_raw_shards_train_with_no_recipe_change(tmp_path, shards):
    from tfcnn.data import ingest

    raw = tmp_path / "raw"
    ingest.ingest(shards.parent / "images", raw, validation_fraction=0.2,
                  raw=True, workers=1, progress=False)
    recipe = tiny_recipe(tmp_path / "run", batch_size=4).replace(
        data={"source": Source.TFRECORD, "path": str(raw)})
    original = recipe.replace(data={"path": str(shards)})
    batches = [next(iter(inputs.evaluation_inputs(r, "validation").dataset))
               for r in (recipe, original)]
    # PNG sources: raw records hold exactly the decoded pixels.
    np.testing.assert_array_equal(batches[0][0], batches[1][0])
    np.testing.assert_array_equal(batches[0][1], batches[1][1])
