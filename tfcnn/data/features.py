"""The TFRecord schema: the single source of truth for feature keys.

The keys are those of the ImageNet schema that TensorFlow's reference tools
(``build_imagenet_data.py`` in tensorflow/models) write and read, so shards
made by those tools and by ``tfcnn ingest`` are interchangeable.
"""

import tensorflow as tf

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_FILENAME = "image/filename"
LABEL = "image/class/label"
LABEL_TEXT = "image/class/text"

# image/format of records holding 8-bit RGB pixels, row-major, instead of an
# encoded image (``tfcnn ingest --raw``); image/height and image/width give
# the shape. Readers of the reference schema do not know it: such shards are
# read through tfcnn.data.preprocess.decode_record.
IMAGE_FORMAT_RAW = "raw"

FEATURE_SPEC = {
    IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string),
    IMAGE_FORMAT: tf.io.FixedLenFeature([], tf.string, default_value="jpeg"),
    IMAGE_HEIGHT: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    IMAGE_WIDTH: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    IMAGE_FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
    LABEL: tf.io.FixedLenFeature([], tf.int64),
    LABEL_TEXT: tf.io.FixedLenFeature([], tf.string, default_value=""),
}

def make_example(encoded, *, image_format, height, width, label, text,
                 filename):
    """Builds one ``tf.train.Example`` in the schema above."""
    return tf.train.Example(features=tf.train.Features(feature={
        IMAGE_ENCODED: bytes_feature(encoded),
        IMAGE_FORMAT: bytes_feature(image_format),
        IMAGE_HEIGHT: int64_feature(height),
        IMAGE_WIDTH: int64_feature(width),
        IMAGE_FILENAME: bytes_feature(filename),
        LABEL: int64_feature(label),
        LABEL_TEXT: bytes_feature(text),
    }))


def bytes_feature(value):
    """A ``tf.train.Feature`` of one bytes value (str is UTF-8 encoded)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def int64_feature(value):
    """A ``tf.train.Feature`` of one integer."""
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
