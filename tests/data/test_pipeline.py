"""Tests for tfcnn.data.pipeline: shards to uint8 batches."""

import numpy as np
import pytest
import tensorflow as tf

from tests.data import shard_files
from tfcnn.data import pipeline
from tfcnn.errors import DataError
from tfcnn.train.strategy import mirrored

SIZE = 16


@pytest.fixture
def shards(tmp_path):
    return shard_files.write_shards(tmp_path, num_shards=2, per_shard=6)


def _ids(images):
    # Example i is a constant image of value 5 * i.
    means = np.asarray(images, np.float64).mean(axis=(1, 2, 3))
    return np.round(means / 5).astype(int).tolist()


def _epoch(dataset):
    ids, labels = [], []
    for images, batch_labels in dataset:
        ids += _ids(images)
        labels += batch_labels.numpy().tolist()
    return ids, labels


def test_batches_are_uint8_images_and_int32_labels(shards):
    dataset = pipeline.make_dataset(shards, size=SIZE, batch_size=4,
                                    training=True)
    assert dataset.element_spec[0].dtype == tf.uint8
    assert dataset.element_spec[1].dtype == tf.int32
    assert dataset.element_spec[0].shape.as_list() == [4, SIZE, SIZE, 3]
    images, labels = next(iter(dataset))
    assert images.shape == (4, SIZE, SIZE, 3)
    assert labels.shape == (4,)


def test_evaluation_reads_every_example_once_in_order(shards):
    dataset = pipeline.make_dataset(shards, size=SIZE, batch_size=5,
                                    training=False)
    ids, labels = _epoch(dataset)
    # Two files interleaved one record at a time, last batch kept.
    assert ids == [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]
    assert labels == [i % 3 for i in ids]


def test_training_shuffles_each_epoch_and_drops_the_remainder(shards):
    dataset = pipeline.make_dataset(shards, size=SIZE, batch_size=5,
                                    training=True, seed=3)
    first, _ = _epoch(dataset)
    second, _ = _epoch(dataset)
    assert len(first) == len(second) == 10
    assert first != second
    again, _ = _epoch(pipeline.make_dataset(
        shards, size=SIZE, batch_size=5, training=True, seed=3))
    assert again == first


def test_cache_and_repeat_keep_epochs_whole_and_reshuffled(shards):
    dataset = pipeline.make_dataset(shards, size=SIZE, batch_size=4,
                                    training=True, cache=True, repeat=True,
                                    shuffle_buffer=12)
    ids = []
    for images, _ in dataset.take(6):
        ids += _ids(images)
    # Shuffled after the cache and before the repeat: two whole epochs,
    # each in its own order.
    assert sorted(ids[:12]) == sorted(ids[12:]) == list(range(12))
    assert ids[:12] != ids[12:]


def test_label_offset(shards):
    dataset = pipeline.make_dataset(shards, size=SIZE, batch_size=12,
                                    training=False, label_offset=-1)
    ids, labels = _epoch(dataset)
    assert labels == [i % 3 - 1 for i in ids]


@pytest.mark.parametrize("encoded", [True, False])
def test_dataset_source_of_bytes_or_arrays(encoded):
    images = [shard_files.constant_image(5 * i, 20 + i, 30)
              for i in range(6)]
    if encoded:
        items = [shard_files.encode(image, "png") for image in images]
        source = tf.data.Dataset.from_tensor_slices(
            (items, np.arange(6)))
    else:
        source = tf.data.Dataset.from_generator(
            lambda: ((image, i) for i, image in enumerate(images)),
            output_signature=(
                tf.TensorSpec([None, None, 3], tf.uint8),
                tf.TensorSpec([], tf.int64)))
    dataset = pipeline.make_dataset(source, size=SIZE, batch_size=4,
                                    training=False)
    ids, labels = _epoch(dataset)
    assert ids == labels == list(range(6))
    assert dataset.element_spec[0].shape.as_list() == [None, SIZE, SIZE, 3]


def test_input_context_shards_files_and_batches_per_replica(shards):
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id,
            num_replicas_in_sync=4)
        dataset = pipeline.make_dataset(
            shards, size=SIZE, batch_size=8, training=False,
            input_context=context)
        ids, _ = _epoch(dataset)
        assert dataset.element_spec[0].shape.as_list()[0] in (None, 2)
        seen.append(set(ids))
    # Pipeline i reads file i: disjoint halves that cover everything.
    assert seen == [set(range(6)), set(range(6, 12))]


def test_per_replica_batches_partition_the_global_batch(shards):
    strategy = mirrored(["/cpu:0", "/cpu:1"])
    dataset = pipeline.make_distributed_dataset(
        strategy, shards, size=SIZE, batch_size=4, training=False,
        drop_remainder=True)
    steps = []
    for images, labels in dataset:
        parts = strategy.experimental_local_results(images)
        assert [part.shape[0] for part in parts] == [2, 2]
        assert all(part.dtype == tf.uint8 for part in parts)
        steps.append([_ids(part) for part in parts])
    ids = [i for step in steps for part in step for i in part]
    assert len(steps) == 3
    assert sorted(ids) == list(range(12))


def test_distributed_batch_must_split_evenly(shards):
    strategy = mirrored(["/cpu:0", "/cpu:1"])
    with pytest.raises(ValueError, match="multiple of the 2 replicas"):
        pipeline.make_distributed_dataset(strategy, shards, size=SIZE,
                                          batch_size=5, training=True)


def test_list_shards(tmp_path, shards):
    assert pipeline.list_shards(tmp_path, "train") == sorted(
        str(path) for path in shards)
    with pytest.raises(DataError, match="no validation shards"):
        pipeline.list_shards(tmp_path, "validation")


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 0}, "size must be a positive int"),
    ({"batch_size": -1}, "batch_size must be a positive int"),
    ({"shuffle_buffer": -1}, "shuffle_buffer must be >= 0"),
])
def test_bad_arguments(shards, kwargs, message):
    arguments = {"size": SIZE, "batch_size": 2, "training": True, **kwargs}
    with pytest.raises(ValueError, match=message):
        pipeline.make_dataset(shards, **arguments)


def test_no_files():
    with pytest.raises(ValueError, match="no shard files"):
        pipeline.make_dataset([], size=SIZE, batch_size=2, training=True)


def test_fit_under_a_strategy_on_per_replica_batches(shards):
    import keras

    from tfcnn import augment
    from tfcnn.recipe import AugmentConfig

    strategy = mirrored(["/cpu:0", "/cpu:1"])
    dataset = pipeline.make_distributed_dataset(
        strategy, shards, size=SIZE, batch_size=4, training=True,
        repeat=True)
    with strategy.scope():
        x = inputs = keras.Input((SIZE, SIZE, 3), dtype="uint8")
        for layer in augment.build_preprocessing(AugmentConfig(),
                                                 crop_size=12):
            x = layer(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inputs, keras.layers.Dense(3)(x))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
    history = model.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0)
    assert np.isfinite(history.history["loss"][0])
