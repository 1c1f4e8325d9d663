"""Tests of tfcnn.train.inputs: recipes to datasets."""

import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.data.test_readers import tfds_dir  # noqa: F401 - fixture
from tests.train.conftest import tiny_recipe
from tfcnn.errors import DataError
from tfcnn.errors import RecipeError
from tfcnn.recipe import Source
from tfcnn.train import inputs


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """3 classes x 10 PNGs, ingested (20% validation) with statistics."""
    from tfcnn.data import stats

    shards = _ingested(tmp_path_factory.mktemp("shards"), num_shards=0)
    stats.compute_stats(shards, resize_size=20, progress=False)
    return shards


def _ingested(root, num_shards):
    """24 train and 6 validation PNGs (3 classes), ``num_shards`` each."""
    from tfcnn.data.classification_ingest import ingest

    rng = np.random.default_rng(0)
    for c in range(3):
        folder = root / "images" / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 256, (24, 30, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    # Lossless: the raw-shard test compares decoded pixels exactly.
    ingest(root / "images", root / "shards", validation_split=0.2,
           num_shards=num_shards, lossless=True, workers=1,
           progress=False)
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
    assert data.stats is not None and data.stats.resize_size == 20
    assert not data.dense_labels


class _Worker:
    """Stands in for ``MultiWorkerMirroredStrategy`` on worker ``index``.

    ``distribute_datasets_from_function`` returns the ``tf.data.Dataset``
    this worker's input pipeline would read (one replica per worker).
    """

    def __init__(self, index, count):
        self.context = tf.distribute.InputContext(
            num_input_pipelines=count, input_pipeline_id=index,
            num_replicas_in_sync=count)

    def distribute_datasets_from_function(self, dataset_fn):
        return dataset_fn(self.context)


def _keys(images):
    return [image.tobytes() for image in np.asarray(images)]


def _worker_epochs(recipe, workers=2):
    """Per worker: the images of one training epoch and of validation."""
    seen = []
    for index in range(workers):
        data = inputs.training_inputs(recipe, num_workers=workers,
                                      strategy=_Worker(index, workers))
        train = [key for images, _ in data.train.take(data.steps_per_epoch)
                 for key in _keys(images)]
        validation = [images.shape[0] for images, _ in
                      data.validation.take(data.validation_steps)]
        seen.append((train, validation))
    return seen, data


@pytest.mark.parametrize("num_shards", [4, 3, 1])
def test_workers_partition_the_training_split(tmp_path, num_shards, capfd):
    # 4 files: FILE sharding; 3: FILE with unequal parts; 1: fewer files
    # than workers, DATA sharding. Either way one epoch over both workers
    # reads the split, no image twice.
    shards = _ingested(tmp_path, num_shards)
    recipe = _shard_recipe(tmp_path, shards)
    split = inputs.evaluation_inputs(recipe, split="train")
    everything = sorted(key for images, _ in split.dataset
                        for key in _keys(images))
    seen, data = _worker_epochs(recipe)
    (first, first_val), (second, second_val) = seen
    # Each step a worker reads its half of the global batch of 4.
    assert data.steps_per_epoch == 6
    assert first_val == second_val == [2] * data.validation_steps
    by_record = "DATA sharding" in capfd.readouterr().err
    assert by_record == (num_shards == 1)
    if num_shards == 3:
        # Unequal files (worker 0 holds 2 of 3): the union still covers
        # what the workers read, with no image read by both.
        assert not set(first) & set(second)
        return
    assert len(first) == len(second) == 12
    assert sorted(first + second) == everything


def test_several_workers_read_whole_validation_batches(tmp_path, shards):
    data = inputs.training_inputs(_shard_recipe(tmp_path, shards),
                                  num_workers=2, strategy=_Worker(0, 2))
    assert data.validation_steps == 6 // 4
    for images, _ in data.validation.take(3):
        assert images.shape[0] == 2  # this worker's replica's half
    # The confusion matrix still counts every validation image once.
    assert sum(int(y.shape[0]) for _, y in data.local_validation) == 6
    images, _ = next(iter(data.local_train))
    assert images.shape[0] == 4


def test_synthetic_workers_split_the_global_batch(tmp_path):
    recipe = tiny_recipe(tmp_path / "run")
    one = inputs.training_inputs(recipe)
    images, labels = next(iter(one.train))
    parts = [next(iter(inputs.training_inputs(
        recipe, num_workers=2, strategy=_Worker(i, 2)).train))
        for i in range(2)]
    np.testing.assert_array_equal(
        np.concatenate([p[0] for p in parts]), images)
    np.testing.assert_array_equal(
        np.concatenate([p[1] for p in parts]), labels)


def test_several_workers_need_the_strategy(tmp_path, shards):
    with pytest.raises(ValueError, match="needs the strategy"):
        inputs.training_inputs(_shard_recipe(tmp_path, shards),
                               num_workers=2)


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
    # crop_size 16 in the centre of resize_size 20: offset 2, zeros around.
    assert images.shape[1:] == (20, 20, 3)
    assert images.sum() == images[:, 2:18, 2:18].sum()
    validation, _ = next(iter(data.validation))
    assert validation.numpy()[:, :2].any()  # whole images, not crops


def test_raw_shards_train_with_no_recipe_change(tmp_path, shards):
    from tfcnn.data.classification_ingest import ingest

    raw = tmp_path / "raw"
    ingest(shards.parent / "images", raw, validation_split=0.2,
           raw=True, workers=1, progress=False)
    recipe = tiny_recipe(tmp_path / "run", batch_size=4).replace(
        data={"source": Source.TFRECORD, "path": str(raw)})
    original = recipe.replace(data={"path": str(shards)})
    batches = [next(iter(inputs.evaluation_inputs(r, "validation").dataset))
               for r in (recipe, original)]
    # PNG sources: raw records hold exactly the decoded pixels.
    np.testing.assert_array_equal(batches[0][0], batches[1][0])
    np.testing.assert_array_equal(batches[0][1], batches[1][1])


def test_tfds_validation_is_held_out_of_train_never_the_test_split(
        tmp_path, tfds_dir):  # noqa: F811
    """Validation picks checkpoints/best.keras: it must not be the split
    that evaluate reports."""
    recipe = tiny_recipe(tmp_path / "run", batch_size=2).replace(
        data={"source": "tfds", "tfds_name": "tfcnn_tiny_images",
              "tfds_data_dir": str(tfds_dir), "resize_size": 12,
              "crop_size": 8, "validation_split": 0.34})
    source = inputs._source(recipe)
    assert (source.count("train"), source.count("validation"),
            source.count("test")) == (4, 2, 3)

    def keys(split):
        return [key for images, _ in source.dataset(
            split, batch_size=1, training=False, full_size=True)
            for key in _keys(images)]

    train, validation, test = keys("train"), keys("validation"), keys("test")
    assert (len(train), len(validation)) == (4, 2)
    assert not set(validation) & (set(train) | set(test))
    assert sorted(train + validation) == sorted(keys("train") + validation)
    data = inputs.training_inputs(recipe)
    assert data.validation_steps == 1
    assert inputs.evaluation_inputs(recipe).split == "test"


def test_tfds_source_reads_its_statistics(tmp_path, tfds_dir):  # noqa: F811
    from tfcnn import stages
    from tfcnn.augment.build import needs_stats

    recipe = tiny_recipe(tmp_path / "run", batch_size=2).replace(
        data={"source": "tfds", "tfds_name": "tfcnn_tiny_images",
              "tfds_data_dir": str(tfds_dir), "resize_size": 12,
              "crop_size": 8, "validation_split": 0.34},
        augment={"mean": "channel"})
    # Statistics asked for but never computed: an error, not ImageNet's.
    with pytest.raises(DataError, match=r"tfcnn stats RECIPE"):
        inputs.training_inputs(recipe)
    computed = stages.compute_stats(recipe, progress=False)
    data = inputs.training_inputs(recipe)
    np.testing.assert_array_equal(data.stats.channel_mean,
                                  computed.channel_mean)
    assert not needs_stats(recipe.replace(
        augment={"mean": "imagenet", "pca_lighting": 0.1}).augment)

    everything = sorted(key for images, _ in inputs.evaluation_inputs(
        recipe, split="train").dataset for key in _keys(images))
    seen, data = _worker_epochs(recipe)
    (first, _), (second, _) = seen
    # 4 of the 6 training examples: 2 are held out for validation.
    assert data.steps_per_epoch == 2 and len(first) == len(second) == 2
    assert sorted(first + second) == everything


def test_segmentation_model_on_classification_shards_is_one_line(
        tmp_path, capsys):
    from tests.train.conftest import ingested_recipe
    from tfcnn import cli

    recipe = ingested_recipe(tmp_path)
    assert cli.main(["train", str(recipe), "--set",
                     "model.name=fcn8s_small"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert ("'fcn8s_small' is a segmentation model and the data in "
            f"{tmp_path / 'shards'} is for classification") in err[0], err
    assert not (tmp_path / "run").exists()


def test_classifier_on_segmentation_shards_is_one_line(tmp_path, capsys):
    from tests.data import segmentation_files
    from tests.test_cli_commands import recipe_file
    from tfcnn import cli

    segmentation_files.make_pairs(tmp_path / "src", count=6)
    recipe = recipe_file(tmp_path, augment={"mean": "none"})
    assert cli.main(["ingest", str(recipe), "--workers", "1"]) == 0
    capsys.readouterr()
    assert cli.main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "'lenet5' is a classification model and the data in" in err[
        0] and "is for segmentation" in err[0], err
