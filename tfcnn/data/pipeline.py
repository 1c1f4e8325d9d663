"""Stage 3 of the input pipeline: shards to uint8 batches that keep a GPU busy.

The host does only what must happen before the accelerator: read, parse,
decode and resize to the host size ``S`` (256 for AlexNet). Batches cross to
the device as uint8 ``[B, S, S, 3]`` (4x fewer bytes than float32); the random
crop, flip, PCA lighting and mean subtraction run there as Keras layers
(``tfcnn.augment``), per replica.

    files -> shard per worker -> shuffle files -> parallel interleave
          -> shuffle records -> parse + decode + resize -> batch (uint8)
          -> prefetch

With ``cache=True`` the decoded images are cached and shuffled after the
cache, so each epoch still sees a new order. Every parallel stage uses
``tf.data.AUTOTUNE``.

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
from tfcnn.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE

# Records shuffled at once when shuffle_buffer=0. ImageNet JPEGs average
# ~110 KB, so 10,000 encoded records hold ~1 GB of host memory.
DEFAULT_SHUFFLE_BUFFER = 10_000
# Bytes read ahead per shard file.
_READ_BUFFER = 8 * 2**20


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


def input_dataset(source, decoder, *, batch_size, training, seed=0,
                  shuffle_buffer=0, cache=False, repeat=False,
                  deterministic=None, drop_remainder=None,
                  input_context=None, num_examples=None):
    """The input pipeline of any task: read, decode, batch.

    TF Model Garden's ``InputReader``: ``read_source`` gives the
    elements (records of shard files, or a dataset's examples, sharded
    per input pipeline), ``decoder`` (the task's: ``ClassificationDecoder``
    or ``tfcnn.data.segmentation_pipeline.SegmentationDecoder``) turns
    each into an example, and ``batch_examples`` shuffles, caches,
    repeats, batches and prefetches them.

    Args:
        source: shard file paths or a ``tf.data.Dataset``, as ``decoder``
            was built for.
        decoder: an object with ``decode(*element, seed=...)`` and
            ``decode_batch`` (None, or a function of a batch of elements).
        batch_size, training, seed, shuffle_buffer, cache, repeat,
        deterministic, drop_remainder, input_context, num_examples: as in
            ``make_dataset``.

    Returns:
        ``tf.data.Dataset`` of batches of ``decoder``'s examples.

    Raises:
        ValueError: bad ``batch_size`` or ``shuffle_buffer``, or an empty
            ``source``.
    """
    check_positive(batch_size=batch_size)
    if shuffle_buffer < 0:
        raise ValueError(
            "shuffle_buffer must be >= 0. Received: "
            f"shuffle_buffer={shuffle_buffer}")
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        seed = seed * 1_000_003 + input_context.input_pipeline_id
    if drop_remainder is None:
        drop_remainder = training
    buffer = shuffle_buffer or DEFAULT_SHUFFLE_BUFFER
    examples = read_source(source, training=training, seed=seed,
                           input_context=input_context,
                           deterministic=deterministic)
    # Shuffled before decoding, encoded records hold ~2x fewer bytes than
    # decoded ones; with a cache the examples are shuffled after it (each
    # epoch a new order), and raw records as they are, before batching.
    shuffle_first = (training and not cache
                     and decoder.decode_batch is None)
    if shuffle_first:
        examples = examples.shuffle(buffer, seed=seed,
                                    reshuffle_each_iteration=True)
    if decoder.decode_batch is None:
        examples = examples.map(
            functools.partial(decoder.decode, seed=seed),
            num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    return batch_examples(
        examples, batch_size=batch_size, drop_remainder=drop_remainder,
        shuffle_buffer=buffer if training and not shuffle_first else 0,
        seed=seed, cache=cache, repeat=repeat, deterministic=deterministic,
        input_context=input_context, num_examples=num_examples,
        decode_batch=decoder.decode_batch)


def read_source(source, *, training, seed=0, input_context=None,
                deterministic=None):
    """The elements of a source, this input pipeline's share of them.

    Args:
        source: shard file paths (``read_records``, files shuffled in
            training) or a ``tf.data.Dataset`` (its elements, every n-th
            one with ``input_context``).
        training: bool, shuffle the shard files.
        seed, input_context, deterministic: as in ``make_dataset``.

    Returns:
        ``tf.data.Dataset`` of serialized records, or of the dataset's
        elements.
    """
    if isinstance(source, tf.data.Dataset):
        return _shard(source, input_context)
    return read_records(source, shuffle=training, seed=seed,
                        input_context=input_context,
                        deterministic=deterministic)


def batch_examples(dataset, *, batch_size, drop_remainder,
                   shuffle_buffer=0, seed=0, cache=False, repeat=False,
                   deterministic=None, input_context=None,
                   num_examples=None, decode_batch=None):
    """Caches, shuffles, repeats, batches and prefetches examples.

    Args:
        dataset: ``tf.data.Dataset`` of decoded examples, or of elements
            that ``decode_batch`` decodes a batch at a time.
        batch_size: int, the batch size of this input pipeline.
        drop_remainder: bool, drop the last partial batch.
        shuffle_buffer: int, shuffle (again each epoch) after the cache
            in a buffer of this many examples; 0: no shuffle here.
            Defaults to 0.
        seed, cache, repeat, deterministic, num_examples: as in
            ``make_dataset``.
        input_context: ``tf.distribute.InputContext`` or None: the
            dataset is this pipeline's share already (auto-sharding off).
            Defaults to None.
        decode_batch: callable or None, mapped over the batches.
            Defaults to None.

    Returns:
        ``tf.data.Dataset`` of batches, prefetched.
    """
    if cache:
        dataset = dataset.cache()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed,
                                  reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder,
                            num_parallel_calls=AUTOTUNE,
                            deterministic=deterministic)
    if decode_batch is not None:
        dataset = dataset.map(decode_batch, num_parallel_calls=AUTOTUNE,
                              deterministic=deterministic)
    if num_examples is not None and not repeat and input_context is None:
        batches = (num_examples // batch_size if drop_remainder
                   else -(-num_examples // batch_size))
        dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(batches))
    dataset = dataset.with_options(_options(input_context, deterministic))
    return dataset.prefetch(AUTOTUNE)


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


def list_shards(data_dir, split):
    """Returns the sorted shard paths of ``split`` in ``data_dir``.

    Args:
        data_dir: str or Path, the shard folder.
        split: str, e.g. ``"train"``.

    Returns:
        list of str.

    Raises:
        DataError: no ``<split>-*-of-*`` shard in ``data_dir``.
    """
    pattern = f"{str(data_dir).rstrip('/')}/{split}-*-of-*"
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise DataError(
            f"no {split} shards ({split}-*-of-*) in {data_dir}")
    return files


def sharding_policy(num_files, num_pipelines):
    """How ``num_pipelines`` input pipelines split ``num_files`` shards.

    Args:
        num_files: int, shard files of the split.
        num_pipelines: int, input pipelines (one per worker).

    Returns:
        ``tf.data.experimental.AutoShardPolicy``: ``OFF`` for one pipeline,
        ``FILE`` (each pipeline reads its own files) when there are at
        least as many files as pipelines, else ``DATA`` (each pipeline
        reads every file and keeps its own records).
    """
    policy = tf.data.experimental.AutoShardPolicy
    if num_pipelines <= 1:
        return policy.OFF
    return policy.FILE if num_files >= num_pipelines else policy.DATA


def read_records(files, *, shuffle=False, seed=0, input_context=None,
                 deterministic=None, with_paths=False):
    """The serialized records of shard files, read in parallel.

    The one read path of shards: training, evaluation, statistics and the
    preview all read through it (``tfcnn.data.readers`` adds the labels'
    checks on top).

    Args:
        files: sequence of shard paths (str or Path).
        shuffle: bool, shuffle the file order (again each epoch).
            Defaults to False.
        seed: int, seed of the file shuffle. Defaults to 0.
        input_context: ``tf.distribute.InputContext`` or None; when given,
            this pipeline reads only its share of the files, or of each
            file's records when there are fewer files than pipelines
            (``sharding_policy``).
            Defaults to None.
        deterministic: bool or None, as in ``make_dataset``.
            Defaults to None.
        with_paths: bool, yield ``(record, path)`` pairs so that errors can
            name the shard. Defaults to False.

    Returns:
        ``tf.data.Dataset`` of scalar strings (or pairs).

    Raises:
        ValueError: ``files`` is empty.
    """
    files = [str(f) for f in files]
    if not files:
        raise ValueError(f"source has no shard files. Received: source={files}")
    pipelines = input_context.num_input_pipelines if input_context else 1
    by_record = (sharding_policy(len(files), pipelines)
                 is tf.data.experimental.AutoShardPolicy.DATA)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if not by_record:
        dataset = _shard(dataset, input_context)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed,
                                  reshuffle_each_iteration=True)

    def open_shard(path):
        records = tf.data.TFRecordDataset(path, buffer_size=_READ_BUFFER)
        if by_record:
            # Per file, so the split holds whatever order the files and
            # the interleave take on each pipeline.
            records = records.shard(pipelines,
                                    input_context.input_pipeline_id)
        if with_paths:
            records = records.map(lambda record: (record, path))
        return records

    return dataset.interleave(
        open_shard, cycle_length=min(len(files), 16), block_length=1,
        num_parallel_calls=AUTOTUNE, deterministic=deterministic)


def _shard(dataset, input_context):
    if input_context is None or input_context.num_input_pipelines == 1:
        return dataset
    return dataset.shard(input_context.num_input_pipelines,
                         input_context.input_pipeline_id)


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


def _options(input_context, deterministic):
    options = tf.data.Options()
    if deterministic is not None:
        options.deterministic = deterministic
    policy = tf.data.experimental.AutoShardPolicy
    if input_context is not None:
        # Sharded by hand above; auto-sharding again would drop data.
        options.experimental_distribute.auto_shard_policy = policy.OFF
    return options


def check_positive(**values):
    """Raises ``ValueError`` naming the first value that is no positive
    int (``check_positive(batch_size=0)``)."""
    for name, value in values.items():
        if not isinstance(value, int) or value <= 0:
            raise ValueError(
                f"{name} must be a positive int. Received: {name}={value!r}")
