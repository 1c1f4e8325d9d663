"""Test fixture: shards as TensorFlow's reference ImageNet tools write them.

A minimal, separate ``tf.train.Example`` writer in the reference schema
(``build_imagenet_data.py`` in tensorflow/models): 1-based labels, synset
text, extension-less shard names, plus the reference tools' extra keys
(colorspace, channels, synset) that our readers must ignore. It shares no
code with ``tfcnn.data`` on purpose.
"""

import io

import numpy as np
import tensorflow as tf
from PIL import Image

SYNSETS = ("n01440764", "n01443537", "n01484850")


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def jpeg(seed, height=24, width=32):
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                    ).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_reference_shards(folder, split="train", num_shards=2,
                           per_shard=4, first_label=1):
    """Writes ``<split>-0000K-of-0000N`` files; returns [(bytes, label)]."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for shard in range(num_shards):
        name = f"{split}-{shard:05d}-of-{num_shards:05d}"
        with tf.io.TFRecordWriter(str(folder / name)) as writer:
            for i in range(per_shard):
                index = shard * per_shard + i
                label = first_label + index % len(SYNSETS)
                encoded = jpeg(index)
                example = tf.train.Example(features=tf.train.Features(
                    feature={
                        "image/height": _int(24),
                        "image/width": _int(32),
                        "image/colorspace": _bytes(b"RGB"),
                        "image/channels": _int(3),
                        "image/class/label": _int(label),
                        "image/class/synset": _bytes(
                            SYNSETS[index % 3].encode()),
                        "image/class/text": _bytes(b"some fish"),
                        "image/format": _bytes(b"JPEG"),
                        "image/filename": _bytes(
                            f"{SYNSETS[index % 3]}_{index}.JPEG".encode()),
                        "image/encoded": _bytes(encoded),
                    }))
                writer.write(example.SerializeToString())
                written.append((encoded, label))
    return written
