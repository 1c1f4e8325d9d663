"""The TFRecord schema of segmentation shards: TF Model Garden's keys.

Model Garden's segmentation reader (``official/vision/dataloaders/
segmentation_input.py``) parses ``image/encoded``, ``image/height``,
``image/width`` and ``image/segmentation/class/encoded``, decodes the image
with ``tf.io.decode_image(..., channels=3)`` and the mask with
``tf.io.decode_image(..., channels=1)``, and reshapes both to the stored
height and width. ``tfcnn ingest`` writes exactly these keys (plus the
formats and the file name, as DeepLab's ``build_data.py`` does), with the
mask as a single-channel 8-bit PNG whose pixel value is the class id and
``IGNORE_VALUE`` (255, Pascal VOC's "void") marks pixels that count in
neither loss nor metrics. So Model Garden reads tfcnn's shards and tfcnn
reads Model Garden's.

Masks can also be stored raw (``tfcnn ingest --raw-masks``): the mask's
``H * W`` bytes of class ids, row by row, with ``image/segmentation/class/
format`` ``"raw"`` and the manifest's ``storage.mask_format`` saying so.
Reading them is a copy where a PNG costs an inflate and an unfilter per
row (about a third of the host's time per record on VOC-sized masks), at
``H * W`` bytes per record; Model Garden's decoder reads only PNG masks,
so default shards keep them.
"""

import tensorflow as tf

from tfcnn.data import features
from tfcnn.data import segmentation_masks

# The image keys are those of the classification schema.
IMAGE_ENCODED = features.IMAGE_ENCODED
IMAGE_FORMAT = features.IMAGE_FORMAT
IMAGE_HEIGHT = features.IMAGE_HEIGHT
IMAGE_WIDTH = features.IMAGE_WIDTH
IMAGE_FILENAME = features.IMAGE_FILENAME
MASK_ENCODED = "image/segmentation/class/encoded"
MASK_FORMAT = "image/segmentation/class/format"

SCHEMA_NAME = "model-garden-segmentation-tfrecord"
# The values of MASK_FORMAT: Model Garden's PNG, or H * W raw bytes.
MASK_PNG = segmentation_masks.MASK_PNG
MASK_RAW = segmentation_masks.MASK_RAW

FEATURE_SPEC = {
    **{key: features.FEATURE_SPEC[key] for key in (
        IMAGE_ENCODED, IMAGE_FORMAT, IMAGE_HEIGHT, IMAGE_WIDTH,
        IMAGE_FILENAME)},
    MASK_ENCODED: tf.io.FixedLenFeature([], tf.string),
    MASK_FORMAT: tf.io.FixedLenFeature([], tf.string,
                                       default_value=MASK_PNG),
}


def make_example(encoded, *, image_format, height, width, mask_encoded,
                 filename, mask_format=MASK_PNG):
    """Builds one segmentation ``tf.train.Example``.

    Args:
        encoded: bytes, the encoded image (JPEG or PNG).
        image_format: str, ``"jpeg"`` or ``"png"``.
        height: int, image rows (the mask has the same).
        width: int, image columns.
        mask_encoded: bytes, a single-channel 8-bit PNG of class ids, or
            with ``mask_format="raw"`` the ``height * width`` ids row by
            row (``encode_mask``).
        filename: str or bytes, the image's path relative to the source.
        mask_format: ``"png"`` or ``"raw"``. Defaults to ``"png"``.

    Returns:
        ``tf.train.Example``.
    """
    return tf.train.Example(features=tf.train.Features(feature={
        IMAGE_ENCODED: features.bytes_feature(encoded),
        IMAGE_FORMAT: features.bytes_feature(image_format),
        IMAGE_HEIGHT: features.int64_feature(height),
        IMAGE_WIDTH: features.int64_feature(width),
        IMAGE_FILENAME: features.bytes_feature(filename),
        MASK_ENCODED: features.bytes_feature(mask_encoded),
        MASK_FORMAT: features.bytes_feature(mask_format),
    }))


def decode(serialized):
    """Parses one serialized segmentation Example into a dict of tensors.

    Args:
        serialized: scalar string tensor.

    Returns:
        dict keyed by the constants of this module.
    """
    return tf.io.parse_single_example(serialized, FEATURE_SPEC)


def schema_description():
    """The schema as stored in the manifest (feature key -> type)."""
    return {"name": SCHEMA_NAME,
            "features": {key: spec.dtype.name
                         for key, spec in FEATURE_SPEC.items()}}


def example_mask(example):
    """The mask of a parsed record (``decode``) as uint8 ``[H, W]``.

    A raw mask (``MASK_FORMAT`` ``"raw"``) is its bytes reshaped to the
    record's height and width; anything else is a PNG (``decode_mask``).
    A raw mask of the wrong size fails in the reshape, naming both sizes.
    """
    encoded = example[MASK_ENCODED]

    def raw():
        shape = tf.cast(tf.stack([example[IMAGE_HEIGHT],
                                  example[IMAGE_WIDTH]]), tf.int32)
        return tf.reshape(tf.io.decode_raw(encoded, tf.uint8), shape)

    mask = tf.cond(tf.equal(example[MASK_FORMAT], MASK_RAW), raw,
                   lambda: decode_mask(encoded))
    return tf.ensure_shape(mask, [None, None])


def decode_mask(encoded):
    """Decodes a mask PNG (one channel of class ids) to uint8 ``[H, W]``.

    What Model Garden's reader gets from ``tf.io.decode_image(...,
    channels=1)``, without its format dispatch (a chain of conditionals,
    each a function call per record in tf.data): the schema's masks are
    PNG.
    """
    mask = tf.io.decode_png(encoded, channels=1)
    return tf.ensure_shape(mask[..., 0], [None, None])
