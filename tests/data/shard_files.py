"""Writes small real shards in the project schema for pipeline tests."""

import numpy as np
import tensorflow as tf

from tfcnn.data import features
from tfcnn.data import sharding


def encode(image, image_format="jpeg"):
    """Encodes a uint8 ``[H, W, 3]`` array as JPEG or PNG bytes."""
    if image_format == "jpeg":
        return tf.io.encode_jpeg(image, quality=95).numpy()
    return tf.io.encode_png(image).numpy()


def constant_image(value, height, width):
    """An image whose every pixel is ``value`` (survives JPEG and resize)."""
    return np.full((height, width, 3), value, dtype=np.uint8)


def write_shards(directory, *, num_shards=2, per_shard=6, split="train",
                 height=40, width=52, num_classes=3):
    """Writes shards whose example ``i`` is a constant image of value ``i``.

    Labels are ``i % num_classes``; formats alternate JPEG and PNG, and
    heights vary so the resize sees tall and wide images.

    Returns:
        list of shard paths.
    """
    paths = []
    index = 0
    for shard in range(num_shards):
        name = sharding.shard_filename(split, shard, num_shards)
        path = f"{directory}/{name}"
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(per_shard):
                h = height + (index % 3) * 7
                image_format = "png" if index % 2 else "jpeg"
                image = constant_image(index * 5, h, width)
                writer.write(features.make_example(
                    encode(image, image_format), image_format=image_format,
                    height=h, width=width, label=index % num_classes,
                    text=f"class{index % num_classes}",
                    filename=f"{index}.{image_format}").SerializeToString())
                index += 1
        paths.append(path)
    return paths

