"""Recipe -> datasets for training and evaluation.

Three kinds of source feed the same contract, batches of
``(uint8 [B, S, S, 3], int32 [B])`` at the host size ``S = data.resize_size``
(labels become ``float32 [B, K]`` after MixUp/CutMix):

- shards (``digits``, ``folder`` after ingest, ``tfrecord``): the manifest
  (``tfcnn.data.manifest``) names the files and counts, and
  ``tfcnn.data.pipeline.make_dataset`` reads them;
- ``tfds``: a prepared tfds dataset through ``tfcnn.data.readers``;
- ``synthetic``: one fixed batch of random images, repeated, so that the
  model alone is measured. Each class has its own mean colour, so a model
  can learn it (tests check that training lowers the loss).

Training batches are global (``train.batch_size``), repeated, and drop the
last partial batch, so that every replica gets the same number of images at
every step; ``model.fit`` splits them over the replicas and, across workers,
the tf.data auto-shard policy splits the shard files. Steps per epoch are
computed from the manifest's counts, never stored in the recipe.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from tfcnn.errors import DataError
from tfcnn.errors import RecipeError
from tfcnn.recipe import Source


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What training reads.

    Attributes:
        train: ``tf.data.Dataset`` of global batches, repeated.
        validation: ``tf.data.Dataset`` or None.
        steps_per_epoch: int.
        validation_steps: int or None (None: one full pass).
        class_names: list of str.
        stats: ``tfcnn.data.stats.DatasetStats`` or None.
        num_train_examples: int, images in the training split.
        dense_labels: bool, whether labels are ``[B, K]`` (MixUp/CutMix).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    steps_per_epoch: int
    validation_steps: int
    class_names: list
    stats: object
    num_train_examples: int
    dense_labels: bool

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
        steps: int, batches in one pass (the last one may be partial).
    """

    dataset: tf.data.Dataset
    num_examples: int
    split: str
    class_names: list
    batch_size: int

    @property
    def steps(self):
        return math.ceil(self.num_examples / self.batch_size)


def training_inputs(recipe, *, num_workers=1):
    """The training and validation datasets of a recipe.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        num_workers: int, worker processes. Under several workers the
            validation set is read in whole global batches for a fixed
            number of steps, so that no worker runs out before the others
            (their collectives would wait forever). Defaults to 1.

    Returns:
        ``Inputs``.

    Raises:
        DataError: a missing or empty training split.
        RecipeError: fewer training images than one global batch.
    """
    data, train = recipe.data, recipe.train
    if data.source is Source.SYNTHETIC:
        return _synthetic_inputs(recipe)
    source = _source(recipe)
    n_train = source.count("train")
    steps = _steps_per_epoch(train, n_train)
    dataset = source.dataset("train", batch_size=train.batch_size,
                             training=True, repeat=True, drop_remainder=True)
    dense = _mixes(recipe.augment)
    if dense:
        from tfcnn.augment import mix_batches

        dataset = mix_batches(dataset, recipe.augment, len(source.class_names),
                              seed=data.seed)
    validation, validation_steps = None, None
    if source.has("validation"):
        n_val = source.count("validation")
        if num_workers > 1:
            validation_steps = max(1, n_val // train.batch_size)
            validation = source.dataset(
                "validation", batch_size=train.batch_size, training=False,
                repeat=True, drop_remainder=True)
        else:
            # Every image once; the count of batches spares Keras a pass
            # that runs into the end of the data (and warns about it).
            validation_steps = math.ceil(n_val / train.batch_size)
            validation = source.dataset(
                "validation", batch_size=train.batch_size, training=False)
        if dense:
            validation = validation.map(
                _one_hot(len(source.class_names)),
                num_parallel_calls=tf.data.AUTOTUNE)
    return Inputs(dataset, validation, steps, validation_steps,
                  source.class_names, source.stats(), n_train, dense)


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
                          _synthetic_names(recipe.data), batch_size)
    source = _source(recipe)
    if split is None:
        split = recipe.data.eval_split
        if not source.has(split):
            split = "validation"
    if not source.has(split):
        raise DataError(
            f"{source.where} has no {split!r} split to evaluate on. "
            f"Received: data.eval_split={recipe.data.eval_split!r}")
    dataset = source.dataset(split, batch_size=batch_size, training=False)
    return EvalInputs(dataset, source.count(split), split,
                      source.class_names, batch_size)


def sample_batch(dataset, count):
    """The first ``count`` images of a dataset's first batch (uint8)."""
    images, _ = next(iter(dataset.take(1)))
    return images[:count]


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

    def has(self, split):
        return self._manifest.has_split(split)

    def count(self, split):
        if not self._manifest.has_split(split):
            raise DataError(
                f"{self.where} has no {split!r} images. Received: "
                f"data.shards={self.where!r}")
        return self._manifest.count(split)

    def stats(self):
        from tfcnn.data import stats as stats_lib

        return stats_lib.load_stats(self._manifest,
                                    size=self._recipe.data.resize_size)

    def dataset(self, split, *, batch_size, training, repeat=False,
                drop_remainder=None):
        from tfcnn.data import pipeline

        data = self._recipe.data
        return pipeline.make_dataset(
            self._manifest.files(split), size=data.resize_size,
            batch_size=batch_size, training=training, seed=data.seed,
            shuffle_buffer=data.shuffle_buffer,
            cache=data.cache and training, repeat=repeat,
            deterministic=None if not training else False,
            drop_remainder=drop_remainder, label_offset=self._label_offset(),
            raw_shape=self._manifest.raw_shape,
            inception_crop=_host_crop(self._recipe))

    def _label_offset(self):
        # A manifest describing reference shards records their offset (-1
        # for labels 1..1000); otherwise the recipe's applies.
        return self._manifest.label_offset or self._recipe.data.label_offset


class _Tfds:
    """A tfds dataset prepared on disk, read by ``tfcnn.data.readers``.

    ``data.tfds_eval_split`` serves as the validation split during training
    and as the evaluation split afterwards.
    """

    def __init__(self, recipe):
        from tfcnn.data import readers

        self._recipe = recipe
        data = recipe.data
        self.where = f"tfds dataset {data.tfds_name}"
        self._splits = {"train": data.tfds_train_split,
                        "validation": data.tfds_eval_split,
                        "test": data.tfds_eval_split}
        self._data_dir = data.tfds_data_dir or None
        self._source = readers.describe_tfds(data.tfds_name,
                                             data_dir=self._data_dir)
        self.class_names = self._source.class_names

    def has(self, split):
        return self._source.has_split(self._splits[split])

    def count(self, split):
        return self._source.count(self._splits[split])

    def stats(self):
        return None

    def dataset(self, split, *, batch_size, training, repeat=False,
                drop_remainder=None):
        from tfcnn.data import pipeline
        from tfcnn.data import readers

        data = self._recipe.data
        examples = readers.read_tfds(data.tfds_name, self._splits[split],
                                     data_dir=self._data_dir)
        return pipeline.make_dataset(
            examples, size=data.resize_size, batch_size=batch_size,
            training=training, seed=data.seed,
            shuffle_buffer=data.shuffle_buffer,
            cache=data.cache and training, repeat=repeat,
            drop_remainder=drop_remainder, label_offset=data.label_offset,
            inception_crop=_host_crop(self._recipe))


def _host_crop(recipe):
    from tfcnn.augment import host_crop_size

    return host_crop_size(recipe.augment, recipe.data.image_size)


def _source(recipe):
    if recipe.data.source is Source.TFDS:
        return _Tfds(recipe)
    return _Shards(recipe)


# Synthetic data ------------------------------------------------------------

def _synthetic_inputs(recipe):
    data, train = recipe.data, recipe.train
    steps = _steps_per_epoch(train, data.synthetic_images)
    images, labels = _synthetic_arrays(recipe, seed_offset=0,
                                       count=train.batch_size)
    # One device-sized batch repeated: no host work per step at all.
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    options = tf.data.Options()
    # Every worker makes its own random images; nothing to shard.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF)
    dataset = dataset.with_options(options)
    dense = _mixes(recipe.augment)
    val_images, val_labels = _synthetic_arrays(recipe, seed_offset=1)
    validation = tf.data.Dataset.from_tensor_slices(
        (val_images, val_labels)).batch(train.batch_size, drop_remainder=True)
    validation = validation.repeat().with_options(options)
    validation_steps = max(1, len(val_labels) // train.batch_size)
    if dense:
        from tfcnn.augment import mix_batches

        dataset = mix_batches(dataset, recipe.augment, data.synthetic_classes,
                              seed=data.seed)
        validation = validation.map(_one_hot(data.synthetic_classes))
    return Inputs(dataset, validation, steps, validation_steps,
                  _synthetic_names(data), None, data.synthetic_images, dense)


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
