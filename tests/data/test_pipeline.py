"""Tests for tfcnn.data.pipeline: shards to uint8 batches."""

import numpy as np
import pytest
import tensorflow as tf

from tests.data import shard_files
from tfcnn.data import pipeline
from tfcnn.data.classification_pipeline import make_dataset
from tfcnn.data.classification_pipeline import make_distributed_dataset
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


def _context(pipelines, pipeline_id, replicas):
    return tf.distribute.InputContext(
        num_input_pipelines=pipelines, input_pipeline_id=pipeline_id,
        num_replicas_in_sync=replicas)


def _epoch(dataset):
    ids, labels = [], []
    for images, batch_labels in dataset:
        ids += _ids(images)
        labels += batch_labels.numpy().tolist()
    return ids, labels


def test_batches_are_uint8_images_and_int32_labels(shards):
    dataset = make_dataset(shards, resize_size=SIZE, batch_size=4,
                           training=True)
    assert dataset.element_spec[0].dtype == tf.uint8
    assert dataset.element_spec[1].dtype == tf.int32
    assert dataset.element_spec[0].shape.as_list() == [4, SIZE, SIZE, 3]
    images, labels = next(iter(dataset))
    assert images.shape == (4, SIZE, SIZE, 3)
    assert labels.shape == (4,)


def test_evaluation_reads_every_example_once_in_order(shards):
    dataset = make_dataset(shards, resize_size=SIZE, batch_size=5,
                           training=False)
    ids, labels = _epoch(dataset)
    # Two files interleaved one record at a time, last batch kept.
    assert ids == [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]
    assert labels == [i % 3 for i in ids]


def test_training_shuffles_each_epoch_and_drops_the_remainder(shards):
    dataset = make_dataset(shards, resize_size=SIZE, batch_size=5,
                           training=True, seed=3)
    first, _ = _epoch(dataset)
    second, _ = _epoch(dataset)
    assert len(first) == len(second) == 10
    assert first != second
    again, _ = _epoch(make_dataset(
        shards, resize_size=SIZE, batch_size=5, training=True, seed=3))
    assert again == first


def test_cache_and_repeat_keep_epochs_whole_and_reshuffled(shards):
    dataset = make_dataset(shards, resize_size=SIZE, batch_size=4,
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
    dataset = make_dataset(shards, resize_size=SIZE, batch_size=12,
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
    dataset = make_dataset(source, resize_size=SIZE, batch_size=4,
                           training=False)
    ids, labels = _epoch(dataset)
    assert ids == labels == list(range(6))
    assert dataset.element_spec[0].shape.as_list() == [None, SIZE, SIZE, 3]


def test_input_context_shards_files_and_batches_per_replica(shards):
    seen = []
    for pipeline_id in range(2):
        dataset = make_dataset(
            shards, resize_size=SIZE, batch_size=8, training=False,
            input_context=_context(2, pipeline_id, 4))
        ids, _ = _epoch(dataset)
        assert dataset.element_spec[0].shape.as_list()[0] in (None, 2)
        seen.append(set(ids))
    # Pipeline i reads file i: disjoint halves that cover everything.
    assert seen == [set(range(6)), set(range(6, 12))]


def test_fewer_files_than_pipelines_split_records_in_training(shards):
    # 2 files, 3 pipelines: each pipeline keeps every 3rd record of each
    # file, whatever order its shuffled files and interleave take.
    policy = tf.data.experimental.AutoShardPolicy
    assert pipeline.sharding_policy(2, 3) is policy.DATA
    assert pipeline.sharding_policy(2, 2) is policy.FILE
    assert pipeline.sharding_policy(1, 1) is policy.OFF
    seen = []
    for pipeline_id in range(3):
        dataset = make_dataset(
            shards, resize_size=SIZE, batch_size=3, training=True,
            drop_remainder=False, input_context=_context(3, pipeline_id, 3))
        ids, _ = _epoch(dataset)
        assert len(ids) == 4
        seen += ids
    assert sorted(seen) == list(range(12))


def test_per_replica_batches_partition_the_global_batch(shards):
    strategy = mirrored(["/cpu:0", "/cpu:1"])
    dataset = make_distributed_dataset(
        strategy, shards, resize_size=SIZE, batch_size=4, training=False,
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
        make_distributed_dataset(strategy, shards, resize_size=SIZE,
                                 batch_size=5, training=True)


def test_list_shards(tmp_path, shards):
    assert pipeline.list_shards(tmp_path, "train") == sorted(
        str(path) for path in shards)
    with pytest.raises(DataError, match="no validation shards"):
        pipeline.list_shards(tmp_path, "validation")


@pytest.mark.parametrize("kwargs, message", [
    ({"resize_size": 0}, "resize_size must be a positive int"),
    ({"batch_size": -1}, "batch_size must be a positive int"),
    ({"shuffle_buffer": -1}, "shuffle_buffer must be >= 0"),
])
def test_bad_arguments(shards, kwargs, message):
    arguments = {"resize_size": SIZE, "batch_size": 2, "training": True,
                 **kwargs}
    with pytest.raises(ValueError, match=message):
        make_dataset(shards, **arguments)


def test_no_files():
    with pytest.raises(ValueError, match="no shard files"):
        make_dataset([], resize_size=SIZE, batch_size=2, training=True)


def test_fit_under_a_strategy_on_per_replica_batches(shards):
    import keras

    from tfcnn import augment
    from tfcnn.recipe import AugmentConfig

    strategy = mirrored(["/cpu:0", "/cpu:1"])
    dataset = make_distributed_dataset(
        strategy, shards, resize_size=SIZE, batch_size=4, training=True,
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


# Raw shards and the Inception crop ------------------------------------------

def _raw_shards(directory, shapes, num_shards=2):
    """Raw records: example i is a constant image of value 5 * i."""
    from tfcnn.data import features
    from tfcnn.data import sharding

    paths = []
    per_shard = len(shapes) // num_shards
    for shard in range(num_shards):
        name = sharding.shard_filename("train", shard, num_shards)
        path = f"{directory}/{name}"
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(shard * per_shard, (shard + 1) * per_shard):
                h, w = shapes[i]
                writer.write(features.make_example(
                    shard_files.constant_image(5 * i, h, w).tobytes(),
                    image_format="raw", height=h, width=w, label=i % 3,
                    text="", filename=f"{i}").SerializeToString())
        paths.append(path)
    return paths


@pytest.mark.parametrize("shape", [(16, 16), (24, 20), (40, 52)])
def test_raw_shards_read_by_batch_equal_those_read_by_record(tmp_path,
                                                            shape):
    files = _raw_shards(tmp_path, [shape] * 12)
    by_record = make_dataset(files, resize_size=SIZE, batch_size=5,
                             training=False)
    by_batch = make_dataset(files, resize_size=SIZE, batch_size=5,
                            training=False, raw_shape=shape)
    assert by_batch.element_spec[0].shape.as_list() == [None, SIZE, SIZE, 3]
    for (a, la), (b, lb) in zip(by_record, by_batch, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    assert sorted(_epoch(by_batch)[0]) == list(range(12))


def test_raw_shards_train_shuffled_repeated_and_cached(tmp_path):
    files = _raw_shards(tmp_path, [(16, 16)] * 12)
    for cache in (False, True):
        dataset = make_dataset(
            files, resize_size=SIZE, batch_size=4, training=True, repeat=True,
            cache=cache, raw_shape=(16, 16), label_offset=1)
        ids, labels = [], []
        for images, batch_labels in dataset.take(6):
            assert images.shape == (4, SIZE, SIZE, 3)
            ids += _ids(images)
            labels += batch_labels.numpy().tolist()
        first, second = ids[:12], ids[12:]
        assert sorted(first) == sorted(second) == list(range(12))
        assert first != list(range(12)) and first != second
        assert labels == [i % 3 + 1 for i in ids]


def test_raw_shards_of_several_shapes_read_by_record(tmp_path):
    files = _raw_shards(tmp_path, [(16, 16), (20, 30)] * 3)
    ids, _ = _epoch(make_dataset(files, resize_size=SIZE, batch_size=4,
                                 training=False))
    assert sorted(ids) == list(range(6))


def test_inception_crop_in_training_only(shards):
    crop = 12
    offset = (SIZE - crop) // 2
    train = make_dataset(shards, resize_size=SIZE, batch_size=4,
                         training=True, inception_crop=crop)
    images, _ = next(iter(train))
    images = images.numpy()
    assert images.shape == (4, SIZE, SIZE, 3)
    inner = images[:, offset:offset + crop, offset:offset + crop]
    assert images.sum() == inner.sum()  # zeros around the crop
    # Evaluation ignores it: the centre square, as always.
    plain = make_dataset(shards, resize_size=SIZE, batch_size=12,
                         training=False)
    evaluation = make_dataset(shards, resize_size=SIZE, batch_size=12,
                              training=False, inception_crop=crop)
    np.testing.assert_array_equal(next(iter(plain))[0],
                                  next(iter(evaluation))[0])


def test_inception_crop_of_a_dataset_source():
    encoded = tf.data.Dataset.from_tensor_slices((
        [shard_files.encode(shard_files.constant_image(9, 30, 20), fmt)
         for fmt in ("png", "jpeg")], np.zeros(2, np.int32)))
    dataset = make_dataset(encoded, resize_size=SIZE, batch_size=2,
                           training=True, inception_crop=10)
    images, _ = next(iter(dataset))
    assert images.shape == (2, SIZE, SIZE, 3)
    np.testing.assert_allclose(images.numpy()[:, 3:13, 3:13], 9, atol=2)
    arrays = tf.data.Dataset.from_tensor_slices(
        (np.full((4, 30, 20, 3), 9, np.uint8), np.zeros(4, np.int32)))
    images, _ = next(iter(make_dataset(
        arrays, resize_size=SIZE, batch_size=4, training=True,
        inception_crop=10)))
    assert (images.numpy()[:, 3:13, 3:13] == 9).all()


def test_inception_crop_larger_than_size_is_rejected(shards):
    with pytest.raises(ValueError,
                       match="inception_crop must be <= resize_size"):
        make_dataset(shards, resize_size=SIZE, batch_size=4,
                     training=True, inception_crop=SIZE + 1)


class _LabelDecoder:
    """A task's decoder of its own: the label of each record."""

    decode_batch = None

    def decode(self, serialized, *, seed):
        del seed
        from tfcnn.data import decode
        from tfcnn.data import features

        return decode.decode(serialized)[features.LABEL]


def test_input_dataset_reads_decodes_and_batches_for_any_decoder(shards):
    dataset = pipeline.input_dataset(shards, _LabelDecoder(), batch_size=5,
                                     training=True, seed=2, repeat=True)
    labels = np.concatenate([b.numpy() for b in dataset.take(12)])
    # 60 draws of the 12 records: every epoch each record once, shuffled.
    _, expected = _epoch(make_dataset(
        shards, resize_size=SIZE, batch_size=12, training=False))
    epochs = labels.reshape(5, 12)
    for epoch in epochs:
        assert sorted(epoch.tolist()) == sorted(expected)
    assert any(e.tolist() != epochs[0].tolist() for e in epochs[1:])
