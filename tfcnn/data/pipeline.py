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

What differs between tasks is the decoder ``input_dataset`` maps over
the read elements: ``tfcnn.data.classification_pipeline`` (``make_dataset``,
which also says how batches meet a distribution strategy) and
``tfcnn.data.segmentation_pipeline``.
"""

import functools

import tensorflow as tf

from tfcnn.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE

# Records shuffled at once when shuffle_buffer=0. ImageNet JPEGs average
# ~110 KB, so 10,000 encoded records hold ~1 GB of host memory.
DEFAULT_SHUFFLE_BUFFER = 10_000
# Bytes read ahead per shard file.
_READ_BUFFER = 8 * 2**20


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
            ``tfcnn.data.classification_pipeline.make_dataset``.

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
        seed, input_context, deterministic: as in ``input_dataset``.

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
            ``tfcnn.data.classification_pipeline.make_dataset``.
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
        deterministic: bool or None, as in ``input_dataset``.
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
