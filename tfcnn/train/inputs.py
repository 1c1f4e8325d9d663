"""Recipe -> datasets for training and evaluation.

Three kinds of source feed the same contract, batches of
``(uint8 [B, S, S, 3], int32 [B])`` at the host size ``S = data.resize_size``
(labels become ``float32 [B, K]`` after MixUp/CutMix):

- shards (``digits``, ``folder`` after ingest, ``tfrecord``): the manifest
  (``tfcnn.data.manifest``) names the files and counts, and
  ``tfcnn.data.classification_pipeline.make_dataset`` reads them;
- ``tfds``: a prepared tfds dataset through ``tfcnn.data.readers``;
- ``synthetic``: one fixed batch of random images, repeated, so that the
  model alone is measured. Each class has its own mean colour, so a model
  can learn it (tests check that training lowers the loss).

Training batches are global (``train.batch_size``), repeated, and drop the
last partial batch, so that every replica gets the same number of images at
every step; ``model.fit`` splits them over the replicas. Steps per epoch are
computed from the manifest's counts, never stored in the recipe.

Under several workers (``MultiWorkerMirroredStrategy``) nothing is left to
tf.data's auto-shard policy: training and validation batches are built per
worker through ``strategy.distribute_datasets_from_function`` (as TF Model
Garden's input readers do), each worker reading its own part of the split
and batching ``batch_size / replicas`` images per replica. Shards are split
by file (``AutoShardPolicy.FILE``): one epoch over all workers reads every
record once. With fewer shard files than workers, every worker reads every
file and keeps its own records (``DATA``), and a line says so; a tfds split
is split by example, and synthetic data by slicing the fixed batch.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from tfcnn import console
from tfcnn import tasks
from tfcnn.errors import DataError
from tfcnn.errors import RecipeError
from tfcnn.recipe import Source


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What training reads.

    Attributes:
        train: what ``fit`` reads: a ``tf.data.Dataset`` of global batches,
            repeated, or under several workers a
            ``tf.distribute.DistributedDataset`` of this worker's
            per-replica batches.
        validation: the same for validation, or None.
        steps_per_epoch: int.
        validation_steps: int or None (None: one full pass).
        class_names: list of str.
        stats: ``tfcnn.data.stats.DatasetStats`` or None.
        num_train_examples: int, images in the training split.
        dense_labels: bool, whether labels are ``[B, K]`` (MixUp/CutMix).
        local_train: ``tf.data.Dataset`` of global training batches read by
            this process alone, never distributed: its first batch shows
            shapes and images (model building, image summaries).
        local_validation: ``tf.data.Dataset``, one pass over the whole
            validation split read by this process alone (the confusion
            matrix), or None.
        task: ``tfcnn.tasks.task.Task``, what the labels are (from the
            manifest).
        label_counts: dict class name -> labels in the training split
            (images, or pixels for segmentation); {} when unrecorded.
        num_validation_examples: int, images in the validation split
            (0 without one).
    """

    train: object
    validation: object
    steps_per_epoch: int
    validation_steps: int
    class_names: list
    stats: object
    num_train_examples: int
    dense_labels: bool
    local_train: tf.data.Dataset
    local_validation: tf.data.Dataset
    task: object
    label_counts: dict
    num_validation_examples: int = 0

    @property
    def num_classes(self):
        return len(self.class_names)


@dataclasses.dataclass(frozen=True)
class EvalInputs:
    """What evaluation reads: one finite pass over a split.

    Attributes:
        dataset: ``tf.data.Dataset`` of ``(uint8 [B, S, S, 3], int32 [B])``.
        num_examples: int.
        split: str, the split's name.
        class_names: list of str.
        batch_size: int.
        task: ``tfcnn.tasks.task.Task``; its ``host_dataset(full_size=True)``
            made ``dataset`` (segmentation: single images at their own
            size).
        steps: int, batches in one pass (the last one may be partial).
    """

    dataset: tf.data.Dataset
    num_examples: int
    split: str
    class_names: list
    batch_size: int
    task: object

    @property
    def steps(self):
        return math.ceil(self.num_examples / self.batch_size)


def training_inputs(recipe, *, num_workers=1, strategy=None):
    """The training and validation datasets of a recipe.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        num_workers: int, worker processes. Under several workers each one
            reads its own part of every split (see the module docstring),
            and the validation set is read in whole batches for a fixed
            number of steps, so that no worker runs out before the others
            (their collectives would wait forever). Defaults to 1.
        strategy: ``tf.distribute.Strategy``; required when
            ``num_workers > 1``. Defaults to None.

    Returns:
        ``Inputs``.

    Raises:
        DataError: a missing or empty training split.
        RecipeError: fewer training images than one global batch.
    """
    if num_workers > 1 and strategy is None:
        raise ValueError(
            "training_inputs needs the strategy to read per worker. "
            f"Received: num_workers={num_workers}, strategy=None")
    data, train = recipe.data, recipe.train
    if data.source is Source.SYNTHETIC:
        check_model_task(recipe, tasks.default_task(),
                         "synthetic images")
        return _synthetic_inputs(recipe, num_workers, strategy)
    source = _source(recipe)
    check_model_task(recipe, source.task, source.where)
    n_train = source.count("train")
    steps = _steps_per_epoch(train, n_train)
    dense = _mixes(recipe.augment)
    num_classes = len(source.class_names)

    def batches(split, input_context=None, **kwargs):
        dataset = source.dataset(split, batch_size=train.batch_size,
                                 input_context=input_context, **kwargs)
        if not dense:
            return dataset
        if kwargs["training"]:
            from tfcnn.augment import mix_batches

            return mix_batches(dataset, recipe.augment, num_classes,
                               seed=data.seed)
        return dataset.map(_one_hot(num_classes),
                           num_parallel_calls=tf.data.AUTOTUNE)

    train_args = dict(training=True, repeat=True, drop_remainder=True)
    local_train = batches("train", **train_args)
    has_validation = source.has("validation")
    # Every image once; the count of batches spares Keras a pass that
    # runs into the end of the data (and warns about it).
    local_validation = batches("validation", training=False) if (
        has_validation) else None
    validation, validation_steps = local_validation, None
    n_val = source.count("validation") if has_validation else 0
    if has_validation:
        validation_steps = math.ceil(n_val / train.batch_size)
    if num_workers == 1:
        return Inputs(local_train, validation, steps, validation_steps,
                      source.class_names, source.stats(), n_train, dense,
                      local_train, local_validation, source.task,
                      source.label_counts("train"), n_val)
    by_record = [split for split in ("train", "validation")
                 if source.has(split)
                 and source.shards_by_record(split, num_workers)]
    if by_record:
        console.progress(
            f"{' and '.join(by_record)}: fewer shard files in "
            f"{source.where} than the {num_workers} workers, so each worker "
            f"reads every file and keeps 1 record in {num_workers} (DATA "
            f"sharding; ingest with --num-shards {num_workers} or more to "
            f"split by file)")
    train_data = strategy.distribute_datasets_from_function(
        lambda context: batches("train", context, **train_args))
    if has_validation:
        validation_steps = max(1, n_val // train.batch_size)
        validation = strategy.distribute_datasets_from_function(
            lambda context: batches("validation", context, training=False,
                                    repeat=True, drop_remainder=True))
    return Inputs(train_data, validation, steps, validation_steps,
                  source.class_names, source.stats(), n_train, dense,
                  local_train, local_validation, source.task,
                  source.label_counts("train"), n_val)


def evaluation_inputs(recipe, split=None, batch_size=None):
    """One pass over the evaluation split, every image counted once.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        split: str or None; None reads ``data.eval_split`` when the data has
            it, else ``validation``.
        batch_size: int or None; None uses ``train.batch_size``.

    Returns:
        ``EvalInputs``.
    """
    batch_size = batch_size or recipe.train.batch_size
    if recipe.data.source is Source.SYNTHETIC:
        split = split or "validation"
        images, labels = _synthetic_arrays(recipe, seed_offset=1)
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(
            batch_size)
        return EvalInputs(dataset, len(labels), split,
                          _synthetic_names(recipe.data), batch_size,
                          tasks.default_task())
    source = _source(recipe)
    check_model_task(recipe, source.task, source.where)
    if split is None:
        split = recipe.data.eval_split
        if not source.has(split):
            split = "validation"
    if not source.has(split):
        raise DataError(
            f"{source.where} has no {split!r} split to evaluate on. "
            f"Received: data.eval_split={recipe.data.eval_split!r}")
    dataset = source.dataset(split, batch_size=batch_size, training=False,
                             full_size=True)
    return EvalInputs(dataset, source.count(split), split,
                      source.class_names, batch_size, source.task)


def check_model_task(recipe, task, where):
    """Raises ``RecipeError`` when ``model.name`` answers another task than
    the data's (a per-pixel model on labels per image, or the reverse):
    one line before any dataset or model is built.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        task: ``tfcnn.tasks.task.Task`` of the data (its manifest's).
        where: str, the data's folder or name, for the message.
    """
    from tfcnn import models

    wanted = models.model_task(recipe.model.name)
    if wanted != task.name:
        raise RecipeError(
            f"model.name = {recipe.model.name!r} is a {wanted} model and "
            f"the data in {where} is for {task.name} (its manifest's task); "
            f"choose a {task.name} model (`tfcnn models`) or {wanted} "
            f"data. Received: model.name={recipe.model.name!r}, "
            f"task={task.name!r}")


# Sources ----------------------------------------------------------------

class _Shards:
    """Shard folder with a manifest (or reference shards without one)."""

    def __init__(self, recipe):
        from tfcnn.data import manifest as manifest_lib

        self._recipe = recipe
        directory = recipe.data.shard_dir
        self.where = str(directory)
        # Shards from other tools have no manifest (their labels may be
        # 1-based): described from their files.
        self._manifest = manifest_lib.describe(
            directory, label_offset=recipe.data.label_offset,
            labels_file=recipe.data.labels_file or None)
        self.class_names = self._manifest.class_names
        self.task = tasks.get_task(self._manifest.task)

    def has(self, split):
        return self._manifest.has_split(split)

    def count(self, split):
        if not self._manifest.has_split(split):
            raise DataError(
                f"{self.where} has no {split!r} images. Received: "
                f"data.shards={self.where!r}")
        return self._manifest.count(split)

    def label_counts(self, split):
        return self.task.label_counts(self._manifest, split)

    def stats(self):
        from tfcnn.data import stats as stats_lib
        from tfcnn.tasks import task as task_lib

        return stats_lib.load_stats(
            self._manifest, resize_size=self._recipe.data.resize_size,
            required=task_lib.reads_stats(self._recipe))

    def dataset(self, split, *, batch_size, training, repeat=False,
                drop_remainder=None, input_context=None, full_size=False):
        data = self._recipe.data
        return self.task.host_dataset(
            self._manifest.files(split), resize_size=data.resize_size,
            batch_size=batch_size, training=training, full_size=full_size,
            seed=data.seed,
            shuffle_buffer=data.shuffle_buffer,
            cache=data.cache and training, repeat=repeat,
            deterministic=None if not training else False,
            drop_remainder=drop_remainder, input_context=input_context,
            label_offset=self._label_offset(),
            raw_shape=self._manifest.raw_shape,
            inception_crop=_host_crop(self._recipe))

    def shards_by_record(self, split, num_workers):
        """Whether ``split`` has fewer shard files than workers."""
        from tfcnn.data import pipeline

        policy = pipeline.sharding_policy(len(self._manifest.files(split)),
                                          num_workers)
        return policy is tf.data.experimental.AutoShardPolicy.DATA

    def _label_offset(self):
        # A manifest describing reference shards records their offset (-1
        # for labels 1..1000); otherwise the recipe's applies.
        return self._manifest.label_offset or self._recipe.data.label_offset


class _Tfds:
    """A tfds dataset prepared on disk, read by ``tfcnn.data.readers``.

    Validation during training (which picks ``checkpoints/best.keras``)
    never reads ``data.tfds_eval_split``: it is the dataset's own
    ``validation`` split when it has one, else the last
    ``data.validation_split`` of ``data.tfds_train_split`` (a fixed slice
    of the deterministically ordered split), which training then leaves
    out. ``evaluate`` reads ``data.tfds_eval_split``.
    """

    def __init__(self, recipe):

        self._recipe = recipe
        data = recipe.data
        self.where = f"tfds dataset {data.tfds_name}"
        self.task = tasks.task_of_tfds(data)
        self._source = self.task.describe_tfds(
            data, _labels_file(data.labels_file))
        self.class_names = self._source.class_names
        self._splits, self._counts = _tfds_splits(data, self._source)

    def has(self, split):
        return self._counts.get(split, 0) > 0

    def count(self, split):
        if split not in self._counts:
            return self._source.count(self._splits[split])
        return self._counts[split]

    def label_counts(self, split):
        return {}

    def stats(self):
        from tfcnn.data import stats as stats_lib
        from tfcnn.tasks import task as task_lib

        data = self._recipe.data
        return stats_lib.load_tfds_stats(
            self._source, split=data.tfds_train_split,
            resize_size=data.resize_size,
            required=task_lib.reads_stats(self._recipe))

    def dataset(self, split, *, batch_size, training, repeat=False,
                drop_remainder=None, input_context=None, full_size=False):
        data = self._recipe.data
        examples = self.task.read_tfds(data, self._splits[split])
        # With an input context make_dataset keeps every n-th example of
        # the (deterministically ordered) split before decoding.
        return self.task.host_dataset(
            examples, resize_size=data.resize_size, batch_size=batch_size,
            training=training, full_size=full_size, seed=data.seed,
            shuffle_buffer=data.shuffle_buffer,
            cache=data.cache and training, repeat=repeat,
            drop_remainder=drop_remainder, input_context=input_context,
            label_offset=data.label_offset,
            inception_crop=_host_crop(self._recipe))

    def shards_by_record(self, split, num_workers):
        del split, num_workers
        return False  # always by example (nothing to say)


def _tfds_splits(data, source):
    """The tfds split strings read as train, validation and test, and the
    examples each holds where known.

    Returns:
        ``(splits, counts)``: dicts keyed by ``train``, ``validation`` and
        ``test``; ``counts`` lacks a split whose size tfds does not list
        (a sliced ``data.tfds_train_split`` such as ``train[:50%]``).
    """
    train, evaluation = data.tfds_train_split, data.tfds_eval_split
    splits = {"train": train, "validation": "", "test": evaluation}
    counts = {"validation": 0}
    if source.has_split(evaluation):
        counts["test"] = source.count(evaluation)
    own = "validation"
    if source.has_split(own) and own not in (train, evaluation):
        splits["validation"] = own
        counts["validation"] = source.count(own)
    elif source.has_split(train) and data.validation_split > 0:
        # Held out as ingest holds out shards' validation files.
        total = source.count(train)
        held = math.floor(data.validation_split * total + 0.5)
        if 0 < held < total:
            splits["train"] = f"{train}[:{total - held}]"
            splits["validation"] = f"{train}[{total - held}:]"
            counts["validation"] = held
    if source.has_split(train):
        counts["train"] = source.count(train) - (
            counts["validation"] if splits["validation"].startswith(
                f"{train}[") else 0)
    return splits, counts


def _labels_file(path):
    """Class names from ``data.labels_file``, or None when it is unset."""
    from tfcnn.data import manifest as manifest_lib

    if not path:
        return None
    return manifest_lib.read_labels_file(path, key="data.labels_file")


def _host_crop(recipe):
    from tfcnn.augment import host_crop_size

    return host_crop_size(recipe.augment, recipe.data.crop_size)


def _source(recipe):
    if recipe.data.source is Source.TFDS:
        return _Tfds(recipe)
    return _Shards(recipe)


# Synthetic data ------------------------------------------------------------

def _synthetic_inputs(recipe, num_workers, strategy):
    data, train = recipe.data, recipe.train
    steps = _steps_per_epoch(train, data.synthetic_images)
    images, labels = _synthetic_arrays(recipe, seed_offset=0,
                                       count=train.batch_size)
    val_images, val_labels = _synthetic_arrays(recipe, seed_offset=1)
    dense = _mixes(recipe.augment)
    validation_steps = max(1, len(val_labels) // train.batch_size)

    def batches(context=None):
        if context is None:
            # One global batch repeated: no host work per step at all.
            dataset = tf.data.Dataset.from_tensors((images, labels))
            validation = tf.data.Dataset.from_tensor_slices(
                (val_images, val_labels))
            batch = train.batch_size
        else:
            # This worker's replicas' slices of the same global batch, so
            # that a global step sees exactly the one-worker batch.
            batch = context.get_per_replica_batch_size(train.batch_size)
            dataset = tf.data.Dataset.from_tensor_slices((
                _worker_slices(images, batch, context),
                _worker_slices(labels, batch, context)))
            validation = tf.data.Dataset.from_tensor_slices(
                (val_images, val_labels)).shard(
                    context.num_input_pipelines, context.input_pipeline_id)
        dataset = dataset.repeat()
        validation = validation.batch(batch, drop_remainder=True).repeat()
        if dense:
            from tfcnn.augment import mix_batches

            dataset = mix_batches(dataset, recipe.augment,
                                  data.synthetic_classes, seed=data.seed)
            validation = validation.map(_one_hot(data.synthetic_classes))
        return dataset, validation

    local_train, local_validation = batches()
    local_validation = local_validation.take(validation_steps)
    if num_workers == 1:
        train_data, validation = local_train, local_validation
    else:
        train_data = strategy.distribute_datasets_from_function(
            lambda context: batches(context)[0])
        validation = strategy.distribute_datasets_from_function(
            lambda context: batches(context)[1])
    return Inputs(train_data, validation, steps, validation_steps,
                  _synthetic_names(data), None, data.synthetic_images, dense,
                  local_train, local_validation,
                  tasks.default_task(), {},
                  validation_steps * train.batch_size)


def _worker_slices(array, per_replica, context):
    """This input pipeline's replicas' rows of a global batch, stacked."""
    replicas = context.num_replicas_in_sync // context.num_input_pipelines
    first = context.input_pipeline_id * replicas * per_replica
    rows = array[first:first + replicas * per_replica]
    return rows.reshape((replicas, per_replica, *array.shape[1:]))


def _synthetic_arrays(recipe, *, seed_offset, count=None):
    """Random uint8 images whose mean colour depends on the class."""
    data = recipe.data
    if count is None:
        # The held-out set: a tenth of an epoch, at least one batch.
        count = max(recipe.train.batch_size, data.synthetic_images // 10)
    rng = np.random.default_rng(data.seed + 7919 * seed_offset)
    colours = np.random.default_rng(data.seed).uniform(
        40, 215, size=(data.synthetic_classes, 3))
    labels = rng.integers(0, data.synthetic_classes, size=count)
    size = data.resize_size
    noise = rng.normal(0.0, 25.0, size=(count, size, size, 3))
    images = np.clip(colours[labels][:, None, None, :] + noise, 0, 255)
    return images.astype(np.uint8), labels.astype(np.int32)


def _synthetic_names(data):
    return [f"class_{i}" for i in range(data.synthetic_classes)]


# Helpers -------------------------------------------------------------------

def _steps_per_epoch(train, num_examples):
    if train.steps_per_epoch:
        return train.steps_per_epoch
    steps = num_examples // train.batch_size
    if steps < 1:
        raise RecipeError(
            f"train.batch_size must be at most the {num_examples} training "
            f"images (training drops partial batches). Received: "
            f"batch_size={train.batch_size}")
    return steps


def _mixes(augment):
    return augment.mixup_alpha > 0 or augment.cutmix_alpha > 0


def _one_hot(num_classes):
    def convert(images, labels):
        return images, tf.one_hot(labels, num_classes, dtype=tf.float32)

    return convert
