"""Readers: ``(image, label)`` datasets from shards and tfds datasets.

Each reader returns a ``tf.data.Dataset`` of ``(image, label)`` pairs with
an int32, 0-based label. The image is the stored encoded bytes (a scalar
string) by default, or, with ``resize_size=S``, the image decoded and brought to
``S x S`` by ``tfcnn.data.preprocess.decode_record`` (what the training
pipeline does; raw records of ``tfcnn ingest --raw`` need ``resize_size``).
``tfcnn.data.classification_pipeline.make_dataset`` accepts such a dataset
as its source.

- ``read_shards(data_dir_or_manifest, split)``: shards with a manifest, ours
  or described by ``Manifest.from_shards``.
- ``read_tfrecords(files, num_classes=..., label_offset=...)``: any shard
  files in the ImageNet schema, e.g. those of TensorFlow's reference tools
  (labels 1..1000: ``label_offset=-1``). A label outside the class count
  stops iteration with an error naming the shard and the label.
- ``read_tfds(name, split, data_dir=...)``: a tfds dataset already prepared
  on disk. Nothing is ever downloaded.
"""

import dataclasses
import os
from pathlib import Path

import tensorflow as tf

from tfcnn import storage
from tfcnn.data import decode as decode_lib
from tfcnn.data import features
from tfcnn.data import manifest as manifest_lib
from tfcnn.data import pipeline
from tfcnn.data import preprocess
from tfcnn.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE


def read_shards(data, split, *, resize_size=None, shuffle_files=False, seed=0):
    """Reads one split of a shard folder.

    Args:
        data: str or Path of a folder with ``manifest.json``, or a
            ``Manifest`` (e.g. from ``Manifest.from_shards``).
        split: str, ``"train"``, ``"validation"`` or ``"test"``.
        resize_size: int or None, S: decode and resize to ``S x S`` uint8;
            None yields the encoded bytes. Defaults to None.
        shuffle_files: bool, shuffle the shard order. Defaults to False.
        seed: int, seed of the shard shuffle. Defaults to 0.

    Returns:
        ``tf.data.Dataset`` of ``(image, label)``.
    """
    manifest = data if isinstance(data, manifest_lib.Manifest) else (
        manifest_lib.Manifest.load(data))
    return read_tfrecords(manifest.files(split),
                          num_classes=manifest.num_classes,
                          label_offset=manifest.label_offset,
                          resize_size=resize_size,
                          shuffle_files=shuffle_files, seed=seed)


def read_tfrecords(files, *, num_classes=None, label_offset=0, resize_size=None,
                   shuffle_files=False, seed=0):
    """Reads shard files in the ImageNet schema of ``features.py``.

    Args:
        files: sequence of shard paths (str or Path).
        num_classes: int or None; when given, every ``label +
            label_offset`` must lie in ``[0, num_classes)``, and iteration
            fails with ``tf.errors.InvalidArgumentError`` naming the shard
            and the label otherwise. Defaults to None (not checked).
        label_offset: int added to each stored label. Defaults to 0.
        resize_size: int or None, S: decode and resize to ``S x S``.
            Defaults to None (encoded bytes).
        shuffle_files: bool. Defaults to False.
        seed: int. Defaults to 0.

    Returns:
        ``tf.data.Dataset`` of ``(image, label)``, label int32.

    Raises:
        DataError: ``files`` is empty or a file is missing.
    """
    files = existing_files(files)
    dataset = pipeline.read_records(files, shuffle=shuffle_files, seed=seed,
                                    with_paths=True)
    parse = _parser(num_classes, label_offset, resize_size)
    return dataset.map(parse, num_parallel_calls=AUTOTUNE)


def read_images(files, *, resize_size):
    """The images of shard files, decoded and resized to ``S x S``.

    Reads only the image keys (``image/encoded``, ``image/format``,
    ``image/height``, ``image/width``), which the classification and the
    segmentation schema share, so it reads either kind of shard (and needs
    no label), with ``preprocess.decode_record`` (original, compact or raw
    records).

    Args:
        files: sequence of shard paths.
        resize_size: int, S, the side of the square output.

    Returns:
        ``tf.data.Dataset`` of uint8 ``[S, S, 3]``.
    """
    keys = (features.IMAGE_ENCODED, features.IMAGE_FORMAT,
            features.IMAGE_HEIGHT, features.IMAGE_WIDTH)
    spec = {key: features.FEATURE_SPEC[key] for key in keys}

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        return preprocess.decode_record(*(example[key] for key in keys),
                                        resize_size)

    return tf.data.TFRecordDataset(existing_files(files)).map(
        parse, num_parallel_calls=AUTOTUNE)


def existing_files(files):
    """``files`` as a list of str, checked to be non-empty and present.

    Raises:
        DataError: ``files`` is empty or a file is missing.
    """
    files = [str(f) for f in files]
    if not files:
        raise DataError("no shard files to read. Received: files=[]")
    missing = [f for f in files if not storage.path(f).is_file()]
    if missing:
        raise DataError(f"shard file not found: {missing[0]}")
    return files


def _parser(num_classes, label_offset, resize_size):

    def parse(record, path):
        example = decode_lib.decode(record)
        stored = example[features.LABEL]
        label = tf.cast(stored + label_offset, tf.int32)
        if num_classes is not None:
            inside = tf.logical_and(label >= 0, label < num_classes)
            check = tf.debugging.Assert(inside, [
                "label outside the class count in", path, "stored label",
                stored, f"label_offset {label_offset}, classes "
                f"{num_classes}; {manifest_lib.OFFSET_HINT}"])
            with tf.control_dependencies([check]):
                label = tf.identity(label)
        image = example[features.IMAGE_ENCODED]
        if resize_size is not None:
            image = preprocess.decode_record(
                image, example[features.IMAGE_FORMAT],
                example[features.IMAGE_HEIGHT], example[features.IMAGE_WIDTH],
                resize_size)
        return image, label

    return parse


# tfds ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """A tfds dataset prepared on disk, described like a ``Manifest``.

    Attributes:
        name: str, the tfds name (``"name"``, ``"name/config"``,
            ``"name:1.0.0"``).
        data_dir: str, the tfds data folder.
        class_names: list of str from the label's ``ClassLabel``.
        image_key: str, the image feature.
        label_key: str, the label feature.
        counts: dict split -> examples.
        prepared_dir: str, the prepared dataset's versioned folder
            (``<data_dir>/<name>/<version>``). Defaults to "".
    """

    name: str
    data_dir: str
    class_names: list
    image_key: str
    label_key: str
    counts: dict
    prepared_dir: str = ""

    @property
    def num_classes(self):
        return len(self.class_names)

    def has_split(self, split):
        return self.counts.get(split, 0) > 0

    def count(self, split):
        if split not in self.counts:
            raise DataError(
                f"split {split!r} not in tfds dataset {self.name} "
                f"(it has: {', '.join(self.counts)}). Received: "
                f"split={split!r}")
        return self.counts[split]


def describe_tfds(name, *, data_dir=None):
    """Describes a tfds dataset that is already prepared in ``data_dir``.

    Args:
        name: str, the tfds dataset name.
        data_dir: str, Path or None, the tfds data folder (``tfds build
            --data_dir``); None is tfds' default (``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``). Defaults to None.

    Returns:
        a ``TfdsSource``.

    Raises:
        DataError: the dataset is not prepared there (nothing is
            downloaded), or it has no image or class-label feature.
    """
    builder = _tfds_builder(name, data_dir)
    info = builder.info
    image_key, label_key = _supervised_keys(info, name)
    return TfdsSource(
        name=name, data_dir=str(data_dir or ""),
        class_names=list(info.features[label_key].names),
        image_key=image_key, label_key=label_key,
        counts={split: int(info.splits[split].num_examples)
                for split in info.splits},
        prepared_dir=str(builder.data_dir))


def read_tfds(name, split, *, data_dir=None, resize_size=None):
    """Reads a split of a tfds dataset prepared on disk.

    The image feature is not decoded by tfds (``SkipDecoding``): the reader
    yields the stored bytes, or decodes them with
    ``tfcnn.data.preprocess.decode_and_resize`` when ``resize_size`` is
    given, so tfds data goes through the same decoding as our shards.

    Args:
        name: str, the tfds dataset name.
        split: str, a tfds split (``"train"``, ``"test"``,
            ``"train[:90%]"``, ...).
        data_dir: str, Path or None, the tfds data folder; None is tfds'
            default. Defaults to None.
        resize_size: int or None, S: decode and resize to ``S x S``.
            Defaults to None (encoded bytes).

    Returns:
        ``tf.data.Dataset`` of ``(image, label)``, label int32.

    Raises:
        DataError: the dataset or split is not prepared in ``data_dir``.
    """
    import tensorflow_datasets as tfds

    builder = _tfds_builder(name, data_dir)
    image_key, label_key = _supervised_keys(builder.info, name)
    try:
        dataset = builder.as_dataset(
            split=split, shuffle_files=False,
            decoders={image_key: tfds.decode.SkipDecoding()})
    except (KeyError, ValueError, AssertionError) as error:
        raise DataError(
            f"tfds dataset {name} in {data_dir} has no split {split!r}: "
            f"{error}. Received: split={split!r}") from None

    def pair(example):
        image = example[image_key]
        if resize_size is not None:
            image = preprocess.decode_and_resize(image, resize_size)
        return image, tf.cast(example[label_key], tf.int32)

    return dataset.map(pair, num_parallel_calls=AUTOTUNE)


def _tfds_builder(name, data_dir):
    import tensorflow_datasets as tfds

    data_dir = str(Path(data_dir).expanduser()) if data_dir else None
    try:
        builder = tfds.builder(name, data_dir=data_dir, try_gcs=False)
    except Exception as error:  # noqa: BLE001 (tfds raises many kinds)
        raise DataError(
            f"tfds dataset {name!r} not found in {data_dir}: {error}. "
            f"Received: name={name!r}") from None
    info_file = os.path.join(builder.data_dir, "dataset_info.json")
    if not tf.io.gfile.exists(info_file):
        raise DataError(
            f"tfds dataset {name!r} is not prepared in {builder.data_dir} "
            f"(no dataset_info.json); tfcnn never downloads: prepare it "
            f"first (tfds build {name} --data_dir DIR). "
            f"Received: data_dir={data_dir}")
    return builder


def _supervised_keys(info, name):
    import tensorflow_datasets as tfds

    keys = info.supervised_keys
    if (isinstance(keys, tuple) and len(keys) == 2
            and all(isinstance(k, str) for k in keys)):
        image_key, label_key = keys
    else:
        flat = info.features
        image_key = next((k for k, v in flat.items()
                          if isinstance(v, tfds.features.Image)), None)
        label_key = next((k for k, v in flat.items()
                          if isinstance(v, tfds.features.ClassLabel)), None)
    if not (image_key and label_key and isinstance(
            info.features[image_key], tfds.features.Image) and isinstance(
            info.features[label_key], tfds.features.ClassLabel)):
        raise DataError(
            f"tfds dataset {name!r} needs an Image feature and a ClassLabel "
            f"feature. Received: features={list(info.features)}")
    return image_key, label_key
