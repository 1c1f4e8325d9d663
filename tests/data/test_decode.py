"""Tests for tfcnn.data.decode: parsing against the schema."""

import tensorflow as tf

from tests.data import shard_files
from tfcnn.data import decode
from tfcnn.data import features


def test_decode_returns_every_key_with_its_dtype():
    image = shard_files.constant_image(7, 5, 6)
    example = features.make_example(
        shard_files.encode(image, "png"), image_format="png", height=5,
        width=6, label=3, text="cat", filename="a.png")
    parsed = decode.decode(example.SerializeToString())
    assert set(parsed) == set(features.FEATURE_SPEC)
    assert parsed[features.LABEL].dtype == tf.int64
    assert int(parsed[features.LABEL]) == 3
    assert parsed[features.LABEL_TEXT].numpy() == b"cat"
    decoded = tf.io.decode_png(parsed[features.IMAGE_ENCODED])
    assert decoded.shape == (5, 6, 3)


def test_missing_optional_keys_get_defaults():
    minimal = tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE_ENCODED: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[b"x"])),
        features.LABEL: tf.train.Feature(
            int64_list=tf.train.Int64List(value=[1])),
    }))
    parsed = decode.decode(minimal.SerializeToString())
    assert parsed[features.IMAGE_FORMAT].numpy() == b"jpeg"
    assert int(parsed[features.IMAGE_HEIGHT]) == 0
