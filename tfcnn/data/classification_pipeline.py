"""Stage 3 of the input pipeline for image classification: uint8 batches
of images and their labels.

``make_dataset`` is ``tfcnn.data.pipeline.input_dataset`` (read, decode,
batch: what every task shares) with a ``ClassificationDecoder``, the
classification half (TF Model Garden's ``classification_input.py``); the
segmentation half is ``tfcnn.data.segmentation_pipeline``.

Every kind of record decodes here (``tfcnn.data.preprocess.decode_record``):
original and compact JPEG/PNG, and raw pixels. Raw records of one shape
(``raw_shape``, from the manifest) are batched first and decoded a batch
at a time. With ``inception_crop=C`` training decodes a random Inception
window resized to C (``preprocess.decode_inception_crop``) instead of the
centre square; evaluation is unchanged.

Under a distribution strategy there are two ways in:

* ``model.fit(make_dataset(files, batch_size=GLOBAL, ...))``: Keras splits
  each global batch over the replicas, and under a multi-worker strategy
  tf.data's auto-shard policy (``AUTO``: by file, since the pipeline starts
  from a list of files) gives each worker its own shards.
* ``make_distributed_dataset(strategy, files, batch_size=GLOBAL, ...)``: each
  input pipeline builds per-replica batches of ``GLOBAL / replicas`` from its
  own shard files through ``strategy.distribute_datasets_from_function``.
  With fewer files than input pipelines (``sharding_policy``), every
  pipeline reads every file and keeps every n-th record of each, so the
  pipelines still partition the records.
"""

import functools

import tensorflow as tf

from tfcnn.data import decode as decode_lib
from tfcnn.data import features
from tfcnn.data import preprocess
from tfcnn.data.pipeline import check_positive
from tfcnn.data.pipeline import input_dataset


def make_dataset(source, *, resize_size, batch_size, training, seed=0,
                 shuffle_buffer=0, cache=False, repeat=False,
                 deterministic=None, drop_remainder=None, input_context=None,
                 label_offset=0, raw_shape=None, inception_crop=None,
                 num_examples=None):
    """Builds the host input pipeline: batches of uint8 images and labels.

    ``input_dataset`` with a ``ClassificationDecoder``.

    Args:
        source: list of shard file paths (str or Path) in the schema of
            ``tfcnn.data.features``, or a ``tf.data.Dataset`` of per-example
            ``(image, label)`` pairs where the image is encoded bytes
            (scalar string) or a uint8 ``[H, W, 3]`` array.
        resize_size: int, host size S: the shorter side is resized to S and the
            centre ``S x S`` square kept.
        batch_size: int, the global batch size; with ``input_context`` each
            pipeline batches ``input_context.get_per_replica_batch_size(
            batch_size)``.
        training: bool. Training shuffles files and records (reshuffled
            each epoch) and drops the last partial batch by default.
        seed: int, seed of all shuffling. Defaults to 0.
        shuffle_buffer: int, records in the shuffle buffer; 0 picks
            ``DEFAULT_SHUFFLE_BUFFER``. Only used in training.
            Defaults to 0.
        cache: bool, keep decoded, resized images in memory after the first
            pass. Defaults to False.
        repeat: bool, repeat indefinitely. Defaults to False.
        deterministic: bool or None, element order of parallel stages; None
            keeps tf.data's default (deterministic). False lets a slow
            image not hold up the others. Defaults to None.
        drop_remainder: bool or None; None means ``training``.
            Defaults to None.
        input_context: ``tf.distribute.InputContext`` or None. When given,
            the source is sharded by ``input_pipeline_id`` and batches are
            per replica. Defaults to None.
        label_offset: int added to stored labels (-1 for shards with 1-based
            labels). Defaults to 0.
        raw_shape: ``(height, width)`` or None. When every record of the
            shard files is raw with this shape (``Manifest.raw_shape``),
            records are batched, then decoded a batch at a time.
            Defaults to None (each record decoded on its own, whatever it
            holds).
        inception_crop: int C or None. In training, decode a random
            Inception window resized to ``C x C`` in the centre of the
            ``S x S`` image (the model's centre crop takes it);
            ignored when ``training`` is False. Defaults to None.
        num_examples: int or None, the records in ``source`` (e.g.
            ``Manifest.count(split)``). The dataset then knows its length
            (``assert_cardinality``): Keras shows a full progress bar and
            does not warn that the input "ran out of data" after the first
            epoch. Ignored with ``repeat`` or ``input_context``. Defaults to
            None.

    Returns:
        ``tf.data.Dataset`` of ``(uint8 [B, S, S, 3], int32 [B])``.

    Raises:
        ValueError: bad ``resize_size``, ``batch_size``, ``shuffle_buffer``
            or an empty or unsupported ``source``.
    """
    decoder = ClassificationDecoder(
        source, resize_size=resize_size, label_offset=label_offset,
        raw_shape=raw_shape,
        inception_crop=inception_crop if training else None)
    return input_dataset(
        source, decoder, batch_size=batch_size, training=training,
        seed=seed, shuffle_buffer=shuffle_buffer, cache=cache,
        repeat=repeat, deterministic=deterministic,
        drop_remainder=drop_remainder, input_context=input_context,
        num_examples=num_examples)


class ClassificationDecoder:
    """How classification records and pairs become ``(image, label)``.

    The per-task half of the input pipeline (TF Model Garden's
    ``Decoder`` and ``Parser`` of ``classification_input.py`` in one):
    ``input_dataset`` maps ``decode`` over the read elements, and, when
    ``decode_batch`` is not None, batches the elements as read and maps
    ``decode_batch`` over the batches instead.

    Args:
        source: the source ``input_dataset`` reads (shard files, or a
            ``tf.data.Dataset`` of ``(image, label)`` pairs as
            ``make_dataset`` takes).
        resize_size: int, host size S.
        label_offset: int added to labels. Defaults to 0.
        raw_shape: ``(height, width)`` of every raw record of the shard
            files, or None: see ``make_dataset``. Defaults to None.
        inception_crop: int C or None, a random Inception window per image
            (training only). Defaults to None.

    Raises:
        ValueError: a bad ``resize_size`` or ``inception_crop``.
    """

    def __init__(self, source, *, resize_size, label_offset=0,
                 raw_shape=None, inception_crop=None):
        check_positive(resize_size=resize_size)
        if inception_crop is not None:
            check_positive(inception_crop=inception_crop)
            if inception_crop > resize_size:
                raise ValueError(
                    "inception_crop must be <= resize_size. Received: "
                    f"inception_crop={inception_crop}, "
                    f"resize_size={resize_size}")
        self.resize_size = resize_size
        self.label_offset = label_offset
        self.inception_crop = inception_crop
        self._spec = (source.element_spec
                      if isinstance(source, tf.data.Dataset) else None)
        self.decode_batch = None
        if (raw_shape is not None and inception_crop is None
                and self._spec is None):
            # Raw records are pixels already: cached and shuffled as they
            # are, decoded a batch at a time.
            self.decode_batch = functools.partial(
                _raw_batch, shape=raw_shape, resize_size=resize_size,
                label_offset=label_offset)

    def decode(self, *element, seed):
        """One read element (a serialized record, or an ``(image, label)``
        pair) to ``(uint8 [S, S, 3], int32)``; ``seed`` seeds the
        Inception window."""
        arguments = dict(resize_size=self.resize_size,
                         label_offset=self.label_offset,
                         inception_crop=self.inception_crop, seed=seed)
        if self._spec is None:
            return _example_from_record(*element, **arguments)
        return _example_from_pair(*element, spec=self._spec, **arguments)


def _raw_batch(serialized, *, shape, resize_size, label_offset):
    keys = (features.IMAGE_ENCODED, features.LABEL)
    example = tf.io.parse_example(
        serialized, {key: features.FEATURE_SPEC[key] for key in keys})
    images = preprocess.decode_raw_batch(example[features.IMAGE_ENCODED],
                                         shape, resize_size)
    return images, _label(example[features.LABEL], label_offset)


def _example_from_record(serialized, *, resize_size, label_offset,
                         inception_crop, seed):
    example = decode_lib.decode(serialized)
    args = (example[features.IMAGE_ENCODED], example[features.IMAGE_FORMAT],
            example[features.IMAGE_HEIGHT], example[features.IMAGE_WIDTH])
    if inception_crop is None:
        image = preprocess.decode_record(*args, resize_size)
    else:
        image = preprocess.decode_inception_crop(
            *args, crop_size=inception_crop, resize_size=resize_size, seed=seed)
    return image, _label(example[features.LABEL], label_offset)


def _example_from_pair(image, label, *, spec, resize_size, label_offset,
                       inception_crop, seed):
    image_spec = spec[0]
    if inception_crop is not None:
        if image_spec.dtype == tf.string:
            image = preprocess.decode_inception_crop(
                image, tf.constant(""), 0, 0, crop_size=inception_crop,
                resize_size=resize_size, seed=seed)
        else:
            image = preprocess.inception_crop(
                tf.cast(image, tf.uint8), crop_size=inception_crop,
                resize_size=resize_size, seed=seed)
    elif image_spec.dtype == tf.string:
        image = preprocess.decode_and_resize(image, resize_size)
    elif image_spec.shape[:2] != (resize_size, resize_size):
        image = preprocess.resize_shorter_and_centre_crop(image, resize_size)
    image = tf.ensure_shape(tf.cast(image, tf.uint8),
                            [resize_size, resize_size, 3])
    return image, _label(label, label_offset)


def _label(label, offset):
    return tf.cast(label, tf.int32) + offset


def make_distributed_dataset(strategy, source, *, batch_size, **kwargs):
    """Per-replica batches through ``distribute_datasets_from_function``.

    Each input pipeline (one per worker) reads its own shard files and
    batches ``batch_size / num_replicas_in_sync`` images, so a global step
    consumes exactly ``batch_size`` images, split evenly.

    Args:
        strategy: a ``tf.distribute.Strategy``.
        source: as in ``make_dataset``.
        batch_size: int, the global batch size; must divide evenly over the
            replicas.
        **kwargs: the other keyword arguments of ``make_dataset``.

    Returns:
        ``tf.distribute.DistributedDataset``; ``model.fit`` accepts it.

    Raises:
        ValueError: ``batch_size`` not a multiple of the replica count.
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"batch_size must be a multiple of the {replicas} replicas. "
            f"Received: batch_size={batch_size}")

    def dataset_fn(input_context):
        return make_dataset(source, batch_size=batch_size,
                            input_context=input_context, **kwargs)

    return strategy.distribute_datasets_from_function(dataset_fn)
