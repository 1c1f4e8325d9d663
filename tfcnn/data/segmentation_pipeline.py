"""The host input pipeline of semantic segmentation: image and mask batches.

The dataset element, for training and validation at the host size ``S``::

    (image uint8 [B, S, S, 3], mask uint8 [B, S, S])

where ``mask[b, i, j]`` is the class id of pixel ``(i, j)`` of image ``b``
(an index into the manifest's ``class_names``) or ``IGNORE_VALUE`` (255,
Pascal VOC's "void"), which counts in neither loss nor metrics. Both cross
to the device as uint8, as classification batches do (``tfcnn.data.
pipeline``); the random scale, crop and flip then move image and mask
together on the device (``tfcnn.augment.segmentation``).

On the host the image is decoded and its shorter side resized to ``S``
(bilinear, or area averaging when shrinking 2x or more, as
``tfcnn.data.preprocess.resize_square`` does), keeping the centre square;
the mask gets the very same crop and is resized by **nearest neighbour
only**: a class id is never interpolated, so every mask pixel is a class id
of the source mask or the ignore value.

``read_segmentation_shards`` yields single examples at their own size,
``(uint8 [H, W, 3], uint8 [H, W])``, for evaluation at the images' own
resolution.
"""

import tensorflow as tf

from tfcnn.data import pipeline
from tfcnn.data import preprocess
from tfcnn.data import readers
from tfcnn.data import segmentation_features as features


def make_segmentation_dataset(source, *, resize_size, batch_size, training,
                              **kwargs):
    """Builds the host pipeline of image and mask batches.

    ``tfcnn.data.pipeline.input_dataset`` with a ``SegmentationDecoder``:
    reading, sharding per input pipeline, shuffling, caching, batching and
    prefetching are those of classification; only the decoding differs.

    Args:
        source: list of shard paths in the schema of ``tfcnn.data.
            segmentation_features`` (written by ``tfcnn ingest``, or by
            Model Garden's tools), or a ``tf.data.Dataset`` of per-example
            ``(image, mask)`` pairs: encoded bytes (scalar strings) or
            uint8 arrays ``[H, W, 3]`` and ``[H, W]`` (or ``[H, W, 1]``).
        resize_size: int, host size S.
        batch_size: int, the global batch size.
        training: bool, shuffle and drop the last partial batch.
        **kwargs: the other keyword arguments of ``input_dataset`` (seed,
            shuffle_buffer, cache, repeat, deterministic, drop_remainder,
            input_context, num_examples).

    Returns:
        ``tf.data.Dataset`` of ``(uint8 [B, S, S, 3], uint8 [B, S, S])``.
    """
    return pipeline.input_dataset(
        source, SegmentationDecoder(source, resize_size=resize_size),
        batch_size=batch_size, training=training, **kwargs)


class SegmentationDecoder:
    """How segmentation records and pairs become ``(image, mask)``.

    The segmentation half of ``tfcnn.data.pipeline.input_dataset`` (TF
    Model Garden's ``Decoder`` and ``Parser`` of
    ``segmentation_input.py``): each element is decoded on its own
    (``decode_record``, or ``decode_pair``/``resize_pair`` for a dataset
    of pairs) to ``S x S``.

    Args:
        source: shard files, or a ``tf.data.Dataset`` of ``(image, mask)``
            pairs (see ``make_segmentation_dataset``).
        resize_size: int, host size S.

    Raises:
        ValueError: a bad ``resize_size``.
    """

    decode_batch = None

    def __init__(self, source, *, resize_size):
        pipeline.check_positive(resize_size=resize_size)
        self.resize_size = resize_size
        self._pairs = isinstance(source, tf.data.Dataset)

    def decode(self, *element, seed):
        """One read element to ``(uint8 [S, S, 3], uint8 [S, S])``;
        ``seed`` is unused (the random transforms run on the device)."""
        del seed
        if self._pairs:
            return _pair_from_dataset(*element, resize_size=self.resize_size)
        return decode_record(*element, resize_size=self.resize_size)


def decode_record(serialized, *, resize_size):
    """One serialized segmentation record to ``(image, mask)`` at ``S x S``.

    Args:
        serialized: scalar string tensor.
        resize_size: int, host size S.

    Returns:
        ``(uint8 [S, S, 3], uint8 [S, S])``.
    """
    example = features.decode(serialized)
    mask = features.example_mask(example)
    return decode_pair(example[features.IMAGE_ENCODED], mask, resize_size)


def decode_pair(encoded, mask, resize_size):
    """Decodes an image and brings it and its mask to ``S x S``.

    The image takes classification's road (``preprocess.decode_and_resize``:
    a JPEG decodes only its centre square, at the coarsest DCT scale that
    keeps it ``resize_size`` wide), and the mask is sampled by nearest neighbour
    over the very window the image decoded, so the two stay aligned.

    Args:
        encoded: scalar string tensor, the image bytes.
        mask: uint8 ``[H, W]``, the image's height and width.
        resize_size: int, host size S.

    Returns:
        ``(uint8 [S, S, 3], uint8 [S, S])``.
    """
    image = preprocess.decode_and_resize(encoded, resize_size)
    top, left, extent = _decoded_square(tf.shape(mask), tf.io.is_jpeg(encoded),
                                        resize_size)
    return image, _nearest_square(mask, top, left, extent, resize_size)


def _decoded_square(shape, is_jpeg, resize_size):
    """The square of an ``H x W`` image that ``decode_and_resize`` decodes,
    ``(top, left, side)`` in full-resolution pixels: a JPEG's
    ``jpeg_centre_window`` (scaled pixel ``k`` covers pixels ``r*k`` to
    ``r*k+r-1``), any other image's centre square. Arithmetic on the
    mask's shape rather than a branch around the decode, which in a
    tf.data map costs more than the arithmetic."""
    index, _ = preprocess.jpeg_centre_window(shape, resize_size)
    ratio = tf.gather(preprocess.JPEG_RATIOS, tf.where(is_jpeg, index, 0))
    top, left, side = preprocess.centre_square(-(-shape[:2] // ratio))
    return ratio * top, ratio * left, ratio * side


def resize_pair(image, mask, resize_size):
    """Resizes image and mask alike: shorter side to S, centre square.

    The image is resized by ``preprocess.resize_square`` (bilinear, area
    averaging from 2x down); the mask by nearest neighbour only.

    Args:
        image: uint8 ``[H, W, 3]``.
        mask: uint8 ``[H, W]`` with the image's height and width.
        resize_size: int, host size S.

    Returns:
        ``(uint8 [S, S, 3], uint8 [S, S])``.
    """
    top, left, side = preprocess.centre_square(tf.shape(image))
    image = preprocess.resize_square(
        image[top:top + side, left:left + side, :], resize_size)
    return image, _nearest_square(mask, top, left, side, resize_size)


def _nearest_square(mask, top, left, extent, resize_size):
    """Nearest neighbour of the ``extent``-wide square at ``(top, left)``
    resized to ``resize_size``: output pixel ``j`` takes source pixel
    ``floor((j + 0.5) * extent / resize_size)`` (pixel centres, as
    ``tf.image.resize(method="nearest")``), clipped to the mask."""
    shape = tf.shape(mask)
    steps = (tf.range(resize_size, dtype=tf.float32) + 0.5) / resize_size
    offsets = tf.cast(tf.floor(steps * tf.cast(extent, tf.float32)),
                      tf.int32)
    rows = tf.minimum(top + offsets, shape[0] - 1)
    cols = tf.minimum(left + offsets, shape[1] - 1)
    # Rows, then columns as the rows of the transpose: TensorFlow's CPU
    # gather copies a row in one go but a column byte by byte, and the
    # transposes cost less than the difference (0.9 -> 0.47 ms a mask of
    # 500x375 in a tf.data map, of which 0.29 is reading it).
    rows_first = tf.transpose(tf.gather(mask, rows, axis=0))
    square = tf.transpose(tf.gather(rows_first, cols, axis=0))
    return tf.ensure_shape(tf.cast(square, tf.uint8),
                           [resize_size, resize_size])


def read_segmentation_shards(files, *, deterministic=True):
    """Single examples at their own size, in shard order.

    Args:
        files: sequence of shard paths.
        deterministic: bool, keep the record order. Defaults to True.

    Returns:
        ``tf.data.Dataset`` of ``(uint8 [H, W, 3], uint8 [H, W])``.

    Raises:
        DataError: ``files`` is empty or a file is missing.
    """
    files = readers.existing_files(files)

    def parse(serialized):
        example = features.decode(serialized)
        return (preprocess.decode_image(example[features.IMAGE_ENCODED]),
                features.example_mask(example))

    return tf.data.TFRecordDataset(files).map(
        parse, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic)


def read_full_size(source, *, deterministic=True):
    """Single examples at their own size from shards or a pair dataset.

    Args:
        source: shard paths (``read_segmentation_shards``) or a
            ``tf.data.Dataset`` of ``(image, mask)`` as
            ``make_segmentation_dataset`` takes (encoded bytes or uint8).
        deterministic: bool, keep the order. Defaults to True.

    Returns:
        ``tf.data.Dataset`` of ``(uint8 [H, W, 3], uint8 [H, W])``.
    """
    if not isinstance(source, tf.data.Dataset):
        return read_segmentation_shards(source, deterministic=deterministic)

    def decode(image, mask):
        if image.dtype == tf.string:
            image = preprocess.decode_image(image)
        if mask.dtype == tf.string:
            mask = features.decode_mask(mask)
        elif mask.shape.rank == 3:
            mask = mask[..., 0]
        return tf.cast(image, tf.uint8), tf.cast(mask, tf.uint8)

    return source.map(decode, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=deterministic)


def _pair_from_dataset(image, mask, *, resize_size):
    if mask.dtype == tf.string:
        mask = features.decode_mask(mask)
    elif mask.shape.rank == 3:
        mask = mask[..., 0]
    if image.dtype == tf.string:
        return decode_pair(image, tf.cast(mask, tf.uint8), resize_size)
    return resize_pair(tf.cast(image, tf.uint8), tf.cast(mask, tf.uint8),
                       resize_size)
