"""Tests for tfcnn.data.segmentation_tfds: a tfds mask dataset as a source."""

import numpy as np
import pytest
import tensorflow as tf

from tests.data import segmentation_files
from tests.data import tfds_files
from tfcnn.data import segmentation_pipeline
from tfcnn.data import segmentation_tfds
from tfcnn.errors import DataError


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """A tiny tfds dataset with an image and a one-channel mask feature
    (``tests.data.tfds_files``), like oxford_iiit_pet's image and
    segmentation_mask."""
    import tensorflow_datasets as tfds

    def example(key, label):
        mask = segmentation_files.mask_array(key, 4)
        return {"image": segmentation_files.image_for(mask), "label": label,
                "segmentation_mask": mask[..., None]}

    data_dir = tmp_path_factory.mktemp("tfds")
    tfds_files.prepare(data_dir, "TfcnnTinyMasks", {
        "image": tfds.features.Image(shape=(None, None, 3)),
        "label": tfds.features.ClassLabel(names=["a", "b"]),
        "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
    }, {split: {seed + i: example(seed + i, i % 2) for i in range(count)}
        for split, count, seed in (("train", 5, 0), ("test", 2, 50))})
    return data_dir


def test_tfds_masks_feed_the_segmentation_pipeline(tfds_dir):
    source = segmentation_tfds.describe_segmentation_tfds(
        "tfcnn_tiny_masks", mask_key="segmentation_mask", data_dir=tfds_dir)
    assert source.image_key == "image"
    assert source.label_key == "segmentation_mask"
    assert (source.count("train"), source.count("test")) == (5, 2)
    largest = max(segmentation_files.mask_array(i, 4)[1:].max()
                  for i in range(5))
    assert source.class_names == [str(i) for i in range(largest + 1)]

    pairs = segmentation_tfds.read_segmentation_tfds(
        "tfcnn_tiny_masks", "test", mask_key="segmentation_mask",
        data_dir=tfds_dir)
    dataset = segmentation_pipeline.make_segmentation_dataset(
        pairs, resize_size=24, batch_size=2, training=False)
    (images, masks), = list(dataset)
    assert images.dtype == tf.uint8 and images.shape == (2, 24, 24, 3)
    # tfds orders examples by their keys' hashes: match them up.
    expected = [segmentation_files.mask_array(50 + i, 4)[:, 4:28]
                for i in range(2)]
    found = sorted(next(i for i, e in enumerate(expected)
                        if np.array_equal(e, mask)) for mask in masks.numpy())
    assert found == [0, 1]
    for image, mask in zip(images.numpy(), masks.numpy()):
        np.testing.assert_array_equal(
            image, segmentation_files.image_for(mask))


def test_missing_mask_feature_is_named(tfds_dir):
    with pytest.raises(DataError, match="no one-channel image feature "
                                        "'mask'.*segmentation_mask"):
        segmentation_tfds.describe_segmentation_tfds(
            "tfcnn_tiny_masks", mask_key="mask", data_dir=tfds_dir,
            class_names=["x"])


def test_recipe_with_a_tfds_mask_key_reads_segmentation(tfds_dir, tmp_path):
    from tfcnn import recipe as recipe_lib
    from tfcnn.train import inputs

    labels = tmp_path / "labels.txt"
    labels.write_text("background\nround\nsquare\nstar\n")
    recipe = recipe_lib.recipe_from_dict({"data": {
        "source": "tfds", "tfds_name": "tfcnn_tiny_masks",
        "tfds_data_dir": str(tfds_dir),
        "tfds_mask_key": "segmentation_mask", "labels_file": str(labels),
        "resize_size": 24, "crop_size": 16}})
    source = inputs._source(recipe)
    assert source.task.name == "segmentation"
    assert source.class_names == ["background", "round", "square", "star"]
    images, masks = next(iter(source.dataset("train", batch_size=2,
                                             training=True)))
    assert images.shape == (2, 24, 24, 3) and masks.shape == (2, 24, 24)
    # Validation holds out the end of train (round(0.1 * 5) = 1), never
    # the evaluation split.
    assert (source.count("train"), source.count("validation")) == (4, 1)
    assert len(list(source.dataset("validation", batch_size=1,
                                   training=False))) == 1
    full = list(source.dataset("test", batch_size=1, training=False,
                               full_size=True))
    assert len(full) == 2
    image, mask = full[0]
    assert image.shape == (1, 24, 32, 3) and mask.shape == (1, 24, 32)


def test_run_computes_the_statistics_of_a_segmentation_tfds_source(
        tfds_dir, tmp_path, monkeypatch):
    """The stats stage of `tfcnn run` covers every source: a segmentation
    tfds recipe whose augmentation needs statistics finds them after it."""
    from tfcnn import recipe as recipe_lib
    from tfcnn import run
    from tfcnn.train import inputs

    monkeypatch.chdir(tmp_path)  # nothing may land in the working folder
    recipe = recipe_lib.recipe_from_dict({
        "data": {"source": "tfds", "tfds_name": "tfcnn_tiny_masks",
                 "tfds_data_dir": str(tfds_dir),
                 "tfds_mask_key": "segmentation_mask",
                 "resize_size": 24, "crop_size": 16},
        "augment": {"mean": "channel"},
        "model": {"name": "fcn8s_small"},
        "train": {"batch_size": 2, "model_dir": str(tmp_path / "run")}})
    assert run._stats in run._stages(recipe)
    no_force = run._Force(every_stage=False, training=False)
    report = run._stats(recipe, no_force)
    assert not report.skipped and "5 train images" in report.message
    assert run._stats(recipe, no_force).skipped  # found, not computed again
    assert inputs.training_inputs(recipe).stats.channel_mean.shape == (3,)
    assert list(tmp_path.iterdir()) == []
    assert list(tfds_dir.glob("tfcnn_tiny_masks/*/tfcnn_stats/train-24.npz"))
