"""Tests for tfcnn.data.readers: our shards, reference shards, tfds."""

import numpy as np
import pytest
import tensorflow as tf

from tests.data import image_files
from tests.data import reference_shards
from tests.data import tfds_files
from tfcnn.data import preprocess
from tfcnn.data import readers
from tfcnn.data.classification_ingest import ingest
from tfcnn.data.manifest import Manifest
from tfcnn.errors import DataError


def _pairs(dataset):
    return [(image.numpy(), int(label)) for image, label in dataset]


def test_read_our_shards_as_bytes_and_decoded(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    image_files.make_class_folders(src, ("a", "b"), per_class=3,
                                   kinds=("rgb_jpeg", "rgba_png"))
    ingest(src, out, validation_split=0.0, workers=1,
           progress=False)
    encoded = _pairs(readers.read_shards(out, "train"))
    assert sorted(label for _, label in encoded) == [0, 0, 0, 1, 1, 1]
    originals = {(src / rel).read_bytes() for rel in ("a/000.jpg",
                                                      "b/002.jpg")}
    assert originals <= {image for image, _ in encoded}

    decoded = _pairs(readers.read_shards(out, "train", resize_size=8))
    for (image, label), (raw, raw_label) in zip(decoded, encoded):
        assert image.shape == (8, 8, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(
            image, preprocess.decode_and_resize(raw, 8).numpy())
        assert label == raw_label


def test_reference_shards_from_a_separate_writer(tmp_path):
    written = reference_shards.write_reference_shards(tmp_path, "train", 2, 3)
    manifest = Manifest.from_shards(tmp_path, num_classes=3, label_offset=-1)
    pairs = _pairs(readers.read_shards(manifest, "train"))
    assert sorted(pairs) == sorted(
        (encoded, label - 1) for encoded, label in written)
    dataset = readers.read_tfrecords(manifest.files("train"), num_classes=3,
                                     label_offset=-1, resize_size=16)
    image, label = next(iter(dataset))
    assert image.shape == (16, 16, 3) and label.dtype == tf.int32


def test_label_outside_class_count_stops_iteration_naming_the_shard(
        tmp_path):
    reference_shards.write_reference_shards(tmp_path, "train", 1, 3)
    files = [str(tmp_path / "train-00000-of-00001")]
    dataset = readers.read_tfrecords(files, num_classes=3)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="(?s)train-00000-of-00001.*label_offset=-1"):
        _pairs(dataset)
    # Without num_classes nothing is checked: labels pass through + offset.
    labels = [label for _, label in _pairs(
        readers.read_tfrecords(files, label_offset=-1))]
    assert labels == [0, 1, 2]


def test_read_tfrecords_errors(tmp_path):
    with pytest.raises(DataError, match="no shard files"):
        readers.read_tfrecords([])
    with pytest.raises(DataError, match="not found"):
        readers.read_tfrecords([tmp_path / "train-00000-of-00001"])


# tfds -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """A tiny tfds dataset of three classes (``tests.data.tfds_files``)."""
    import tensorflow_datasets as tfds

    data_dir = tmp_path_factory.mktemp("tfds")
    tfds_files.prepare(data_dir, "TfcnnTinyImages", {
        "image": tfds.features.Image(shape=(None, None, 3)),
        "label": tfds.features.ClassLabel(names=["circle", "square", "star"]),
    }, {split: {seed + i: {"image": image_files.rgb_array(seed + i, 12, 16),
                           "label": i % 3} for i in range(count)}
        for split, count, seed in (("train", 6, 0), ("test", 3, 100))})
    return data_dir


def test_read_tfds_from_local_disk(tfds_dir):
    import tensorflow_datasets as tfds

    assert "tfcnn_tiny_images" not in tfds.list_builders()
    source = readers.describe_tfds("tfcnn_tiny_images", data_dir=tfds_dir)
    assert source.class_names == ["circle", "square", "star"]
    assert (source.count("train"), source.count("test")) == (6, 3)
    assert source.has_split("test") and not source.has_split("validation")

    pairs = _pairs(readers.read_tfds("tfcnn_tiny_images", "train",
                                     data_dir=tfds_dir))
    assert len(pairs) == 6
    expected = {image_files.rgb_array(i, 12, 16).tobytes(): i % 3
                for i in range(6)}
    for encoded, label in pairs:
        pixels = tf.io.decode_image(encoded, channels=3).numpy()
        assert expected[pixels.tobytes()] == label  # lossless, right label

    image, label = next(iter(readers.read_tfds(
        "tfcnn_tiny_images", "test", data_dir=tfds_dir, resize_size=8)))
    assert image.shape == (8, 8, 3) and image.dtype == tf.uint8
    assert label.dtype == tf.int32


def test_tfds_not_prepared_is_a_clear_error(tmp_path, tfds_dir):
    with pytest.raises(DataError, match="not prepared in|not found in"):
        readers.read_tfds("tfcnn_tiny_images", "train", data_dir=tmp_path)
    with pytest.raises(DataError, match="split .validation. not in tfds"):
        readers.describe_tfds("tfcnn_tiny_images",
                              data_dir=tfds_dir).count("validation")

