"""``manifest.json``: what a shard folder holds.

``tfcnn ingest`` writes ``manifest.json`` beside its shards: class names and
labels, counts per split and class, each shard's name, record count, size and
sha256, the source folder, the schema, the ingest options, every skipped file
with its reason and every converted file with what was done, and the name of
the statistics file once ``tfcnn stats`` has run. ``Manifest`` reads it for
everything downstream (the pipeline, training, ``tfcnn run``).

Shards written by other tools (TensorFlow's reference ImageNet scripts) have
no manifest; ``Manifest.from_shards`` describes them by globbing
``train-*``/``validation-*``/``test-*`` (validation also as ``val-*``,
``valid-*`` or ``eval-*``), counting records and checking the
labels against the class count in the same pass (it reads every record's
label once: minutes for all of ImageNet). ``describe(data_dir)`` loads
``manifest.json`` where there is one and describes the shards otherwise.

Every write is atomic (``tfcnn.atomic_files``): a reader sees the old
manifest or the new one, never half of one.
"""

import dataclasses
import json
import os

import tensorflow as tf

from tfcnn import atomic_files
from tfcnn import console
from tfcnn import storage
from tfcnn.data import features
from tfcnn.data import image_folders
from tfcnn.data import sharding
from tfcnn.errors import DataError
from tfcnn.label_values import IGNORE_VALUE

MANIFEST_NAME = "manifest.json"
STATS_NAME = "stats.npz"
# A class-name file beside shards without a manifest: one name per line.
LABELS_FILE_NAME = "labels.txt"
FORMAT = "tfcnn.manifest"
VERSION = 1
SCHEMA_NAME = "imagenet-tfrecord"
_REQUIRED_KEYS = ("class_names", "splits")
# Other names of a split in shard file names (DeepLab's converters and
# others write ``val-0000K-of-0000N``), read when there is no manifest.
SPLIT_ALIASES = {image_folders.VALIDATION: ("val", "valid", "eval")}
OFFSET_HINT = ("if the labels are 1-based (TensorFlow's reference ImageNet "
               "tools store 1..1000), use label_offset=-1 "
               "(data.label_offset)")


class Manifest:
    """A shard folder's description: classes, splits, shards, counts.

    Build one with ``Manifest.load(data_dir)`` (our shards) or
    ``Manifest.from_shards(data_dir, ...)`` (shards without a manifest).

    Args:
        data_dir: str or Path, the folder holding the shards.
        data: dict, the manifest's JSON content.
        from_file: bool, whether ``data`` came from ``manifest.json``.
    """

    def __init__(self, data_dir, data, *, from_file=True):
        self._dir = storage.path(data_dir)
        self._data = data
        self._from_file = from_file

    # Construction --------------------------------------------------------

    @classmethod
    def load(cls, data_dir):
        """Reads ``<data_dir>/manifest.json``.

        Raises:
            DataError: the file is missing, not JSON, or lacks required keys;
                the message names the path.
        """
        path = storage.path(data_dir) / MANIFEST_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(
                f"no {MANIFEST_NAME} in {data_dir}: run `tfcnn ingest` first, "
                "or describe shards from other tools with "
                f"Manifest.from_shards. Received: data_dir={data_dir}"
            ) from None
        except OSError as error:
            raise DataError(f"cannot read {path}: {error.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path} is not valid JSON: {error}") from None
        validate(data, path)
        return cls(data_dir, data)

    @classmethod
    def from_shards(cls, data_dir, *, num_classes=None, labels_file=None,
                    class_names=None, label_offset=0, splits=None):
        """Describes shards that have no ``manifest.json``.

        Finds ``<split>-*`` shard files (``train-00000-of-01024`` with or
        without ``.tfrecord``; validation also named ``val``, ``valid`` or
        ``eval``, ``SPLIT_ALIASES``), counts their records and checks every
        label in the same pass: ``label + label_offset`` must lie in
        ``[0, num_classes)``. Segmentation shards (TF Model Garden's
        schema, found from the first record) get their masks' ids checked
        instead, and the largest id names the classes when nothing else
        does. The reference ImageNet tools write labels
        1..1000 (0 was kept for a background class), so their shards need
        ``label_offset=-1``.

        The classes come from, in this order: ``num_classes``,
        ``labels_file`` or ``class_names`` (at most one of them),
        ``LABELS_FILE_NAME`` (``labels.txt``) beside the shards, or else the
        largest label (names "0", "1", ...). In that last case labels that
        never reach 0 are taken for 1-based labels without an offset, and
        rejected.

        Args:
            data_dir: str or Path, folder of shards.
            num_classes: int, the class count (names become "0", "1", ...).
            labels_file: str or Path, one class name per line in label
                order (e.g. the reference ``imagenet_lsvrc_2015_synsets.txt``).
            class_names: sequence of str, instead of a labels file.
            label_offset: int, added to each stored label. Defaults to 0.
            splits: sequence of split names to look for. Defaults to
                train, validation and test.

        Returns:
            a ``Manifest`` (not written to disk).

        Raises:
            DataError: no shards, conflicting class information, or a label
                outside the class count (naming the shard, the label and the
                usual fix).
        """
        data_dir = storage.path(data_dir)
        if labels_file is None and num_classes is None and (
                class_names is None) and (
                data_dir / LABELS_FILE_NAME).is_file():
            labels_file = data_dir / LABELS_FILE_NAME
        names = _class_names(num_classes, labels_file, class_names)
        found = _find_shards(data_dir, splits or image_folders.SPLITS)
        if _holds_masks(next(iter(found.values()))[0]):
            return cls(data_dir, _segmentation_data(data_dir, found, names),
                       from_file=False)
        scans = {split: [(path, scan_shard(path)) for path in files]
                 for split, files in found.items()}
        names = _check_labels(scans, names, label_offset)
        data = assemble(
            source=data_dir.resolve(), class_names=names,
            label_offset=label_offset, splits=_split_data(scans),
            stats=STATS_NAME if (data_dir / STATS_NAME).is_file() else None)
        return cls(data_dir, data, from_file=False)

    # What others read -----------------------------------------------------

    @property
    def data_dir(self):
        """Path of the shard folder."""
        return self._dir

    @property
    def class_names(self):
        """list of str; label = index."""
        return list(self._data["class_names"])

    @property
    def num_classes(self):
        return len(self._data["class_names"])

    @property
    def task(self):
        """``"classification"`` or ``"segmentation"`` (what ingest wrote)."""
        return self._data.get("task", "classification")

    @property
    def ignore_value(self):
        """int, the mask value of pixels left out of loss and metrics
        (segmentation), or None."""
        return self._data.get("ignore_value")

    def pixel_counts(self, split):
        """dict class name -> pixels of that class in ``split``'s masks
        (segmentation; {} if not recorded)."""
        return dict(self._split(split).get("pixel_counts", {}))

    @property
    def label_offset(self):
        """int added to stored labels by the readers (0 for our shards)."""
        return int(self._data.get("label_offset", 0))

    @property
    def splits(self):
        """tuple of the split names present, in train/validation/test order."""
        return tuple(s for s in image_folders.SPLITS
                     if s in self._data["splits"]) + tuple(
            s for s in self._data["splits"]
            if s not in image_folders.SPLITS)

    def has_split(self, split):
        """Whether ``split`` has at least one record."""
        entry = self._data["splits"].get(split)
        return bool(entry and entry.get("count", 0) > 0)

    def count(self, split):
        """Number of records in ``split``.

        Raises:
            DataError: the split does not exist.
        """
        return int(self._split(split)["count"])

    def files(self, split):
        """Full paths (str) of the shards of ``split``, in shard order."""
        return [str(self._dir / shard["name"])
                for shard in self._split(split)["shards"]]

    def shards(self, split):
        """list of dicts (name, records, bytes[, sha256]) of ``split``."""
        return [dict(shard) for shard in self._split(split)["shards"]]

    def class_counts(self, split):
        """dict class name -> records in ``split`` ({} if not recorded)."""
        return dict(self._split(split).get("class_counts", {}))

    @property
    def skipped(self):
        """list of dicts (path, split, reason) of files ingest skipped."""
        return [dict(item) for item in self._data.get("skipped", [])]

    @property
    def converted(self):
        """list of dicts (path, split, note) of files ingest converted."""
        return [dict(item) for item in self._data.get("converted", [])]

    @property
    def source(self):
        return self._data.get("source")

    @property
    def storage(self):
        """dict, how ingest stored the images: ``kind`` (``"original"``,
        ``"compact"`` or ``"raw"``), the ingest's size limits and JPEG
        quality, record counts per ``formats`` and ``resized``; for
        segmentation the ``mask_format``.
        ``{"kind": "original"}`` for shards from other tools."""
        return dict(self._data.get("storage") or {"kind": "original"})

    @property
    def mask_format(self):
        """How segmentation records store their masks: ``"png"`` (TF
        Model Garden's schema; also for shards from other tools) or
        ``"raw"`` (``tfcnn ingest --raw-masks``)."""
        return self.storage.get("mask_format", "png")

    @property
    def raw_shape(self):
        """``(height, width)`` shared by every raw record, or None (not raw,
        or raw images of several sizes)."""
        shape = self.storage.get("raw_shape")
        return tuple(shape) if shape else None

    @property
    def stats_path(self):
        """Path of the statistics file, or None before ``tfcnn stats``."""
        name = self._data.get("stats")
        return self._dir / name if name else None

    @property
    def from_file(self):
        """Whether this manifest was read from ``manifest.json``."""
        return self._from_file

    def to_dict(self):
        """A deep copy of the manifest's JSON content."""
        return json.loads(json.dumps(self._data))

    def _split(self, split):
        try:
            return self._data["splits"][split]
        except KeyError:
            raise DataError(
                f"split {split!r} not in {self._dir / MANIFEST_NAME} "
                f"(it has: {', '.join(self.splits) or 'none'}). "
                f"Received: split={split!r}") from None

    # Writing ---------------------------------------------------------------

    def save(self):
        """Writes ``manifest.json`` atomically (temporary file + rename)."""
        write(self._dir, self._data)
        self._from_file = True

    def with_stats(self, name):
        """A copy of this manifest that names the statistics file."""
        data = self.to_dict()
        data["stats"] = name
        return Manifest(self._dir, data, from_file=self._from_file)

    def __repr__(self):
        counts = ", ".join(f"{s}={self.count(s)}" for s in self.splits)
        return (f"Manifest({str(self._dir)!r}, classes={self.num_classes}, "
                f"{counts})")


def assemble(*, source, class_names, splits, label_offset=0, skipped=(),
             converted=(), stats=None, schema=None, **extra):
    """The JSON content of a manifest, in the one layout every writer uses.

    Args:
        source: str or Path, where the images or shards came from.
        class_names: sequence of str; label = index.
        splits: dict split -> ``{"count", "shards"[, "class_counts"]}``.
        label_offset: int added to stored labels. Defaults to 0.
        skipped: dicts (path, split, reason) of files left out.
            Defaults to none.
        converted: dicts (path, split, note) of files converted.
            Defaults to none.
        stats: str or None, the statistics file's name. Defaults to None.
        schema: dict or None, the record schema; None is the
            classification schema (``schema_description()``).
            Defaults to None.
        **extra: more keys (ingest's ``options``, ``fingerprint``,
            ``created``, ``files_found``, a segmentation ``task``).

    Returns:
        dict, ready for ``write``.
    """
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": str(source),
        "schema": schema or schema_description(),
        **extra,
        "class_names": list(class_names),
        "labels": {name: i for i, name in enumerate(class_names)},
        "label_offset": label_offset,
        "splits": splits,
        "skipped": list(skipped),
        "converted": list(converted),
        "stats": stats,
    }


def write(data_dir, data):
    """Writes a manifest dict to ``<data_dir>/manifest.json`` atomically."""
    text = json.dumps(data, indent=1, sort_keys=False) + "\n"
    atomic_files.write_bytes_atomic(storage.path(data_dir) / MANIFEST_NAME,
                                    text.encode("utf-8"))


def validate(data, path):
    """Raises ``DataError`` naming ``path`` when ``data`` is not a manifest."""
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a manifest: expected a JSON object")
    missing = [key for key in _REQUIRED_KEYS if key not in data]
    if missing:
        raise DataError(
            f"{path} is not a valid manifest: missing key {missing[0]!r}")
    names = data["class_names"]
    if not isinstance(names, list) or not all(
            isinstance(n, str) for n in names):
        raise DataError(f"{path}: class_names must be a list of strings")
    if not isinstance(data["splits"], dict):
        raise DataError(f"{path}: splits must be an object")
    for split, entry in data["splits"].items():
        if not (isinstance(entry, dict) and isinstance(
                entry.get("count"), int) and isinstance(
                entry.get("shards"), list)):
            raise DataError(
                f"{path}: splits.{split} needs an integer count and a shard "
                "list")
        for shard in entry["shards"]:
            if not (isinstance(shard, dict) and "name" in shard
                    and os.path.basename(shard["name"]) == shard["name"]):
                raise DataError(
                    f"{path}: splits.{split} has a bad shard entry {shard!r}")


def schema_description():
    """The schema as stored in the manifest (feature key -> type)."""
    return {
        "name": SCHEMA_NAME,
        "features": {key: spec.dtype.name
                     for key, spec in features.FEATURE_SPEC.items()},
    }


def describe(data_dir, **from_shards_kwargs):
    """``Manifest.load`` when ``manifest.json`` exists, else ``from_shards``.

    Args:
        data_dir: str or Path, a shard folder.
        **from_shards_kwargs: passed to ``Manifest.from_shards``
            (``num_classes``, ``labels_file``, ``label_offset``, ...).

    Returns:
        a ``Manifest``.
    """
    if (storage.path(data_dir) / MANIFEST_NAME).exists():
        return Manifest.load(data_dir)
    return Manifest.from_shards(data_dir, **from_shards_kwargs)


@dataclasses.dataclass(frozen=True)
class ShardScan:
    """What one pass over a shard found.

    Attributes:
        records: int.
        min_label: int or None (None for an empty shard), as stored.
        max_label: int or None, as stored.
    """

    records: int
    min_label: int | None
    max_label: int | None


def scan_shard(path):
    """Counts the records of one shard and finds its stored label range.

    Args:
        path: str or Path of a shard.

    Returns:
        a ``ShardScan``.

    Raises:
        DataError: the shard is unreadable or a record has no label.
    """
    spec = {features.LABEL: features.FEATURE_SPEC[features.LABEL]}
    dataset = tf.data.TFRecordDataset(str(path)).batch(4096).map(
        lambda batch: tf.io.parse_example(batch, spec)[features.LABEL])
    records, low, high = 0, None, None
    try:
        for labels in dataset.as_numpy_iterator():
            if labels.size:
                records += labels.size
                low = min(int(labels.min()), low if low is not None else (
                    int(labels.min())))
                high = max(int(labels.max()), high if high is not None else (
                    int(labels.max())))
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        raise DataError(f"cannot read shard {path}: {error.message}") from None
    return ShardScan(records, low, high)


def scan_segmentation_shard(path):
    """Counts a segmentation shard's records and finds its mask ids' range.

    Args:
        path: str or Path of a shard.

    Returns:
        ``ShardScan`` whose labels are the smallest and largest mask ids
        (void left out).

    Raises:
        DataError: the shard or a mask is unreadable.
    """
    from tfcnn.data import segmentation_features

    schema = segmentation_features

    def ids(serialized):
        mask = schema.example_mask(schema.decode(serialized))
        void = IGNORE_VALUE
        valid = mask != void
        return (tf.reduce_min(tf.where(valid, mask, void)),
                tf.reduce_max(tf.where(valid, mask, 0)))

    records, low, high = 0, None, None
    try:
        for small, large in tf.data.TFRecordDataset(str(path)).map(
                ids, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator():
            records += 1
            low = int(small) if low is None else min(low, int(small))
            high = int(large) if high is None else max(high, int(large))
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        raise DataError(f"cannot read shard {path}: {error.message}") from None
    return ShardScan(records, low, high)


def _holds_masks(path):
    """Whether the first record of a shard has a segmentation mask."""
    from tfcnn.data import segmentation_features

    for record in tf.data.TFRecordDataset(str(path)).take(1):
        example = tf.train.Example.FromString(record.numpy())
        return segmentation_features.MASK_ENCODED in example.features.feature
    return False


def _segmentation_data(data_dir, found, names):
    """The manifest of segmentation shards (TF Model Garden's schema)
    without one: records counted and mask ids checked in one pass."""
    from tfcnn.data import segmentation_features

    scans = {split: [(path, scan_segmentation_shard(path))
                     for path in files] for split, files in found.items()}
    largest = max((scan.max_label for shards in scans.values()
                   for _, scan in shards if scan.records), default=0)
    if names is None:
        names = [str(i) for i in range(largest + 1)]
    for shards in scans.values():
        for path, scan in shards:
            if scan.records and scan.max_label >= len(names):
                raise DataError(
                    f"{path}: mask value {scan.max_label} is neither a "
                    f"class id (< {len(names)}) nor the ignore value "
                    f"{IGNORE_VALUE}")
    return assemble(
        source=data_dir.resolve(), class_names=names,
        splits=_split_data(scans),
        schema=segmentation_features.schema_description(),
        task="segmentation",
        ignore_value=IGNORE_VALUE,
        stats=STATS_NAME if (data_dir / STATS_NAME).is_file() else None)


def _split_data(scans):
    """The manifest's splits from ``{split: [(path, ShardScan)]}``."""
    return {
        split: {"count": sum(scan.records for _, scan in shards),
                "shards": [{"name": path.name, "records": scan.records,
                            "bytes": path.stat().st_size}
                           for path, scan in shards]}
        for split, shards in scans.items()}


def _find_shards(data_dir, splits):
    """The shard files of each split, named ``<split>-0000K-of-0000N``
    (with or without ``.tfrecord``) or by a ``SPLIT_ALIASES`` name.

    Shard-named files of no split (``dev-00000-of-00001``) are reported on
    stderr, or in the error when no split has any.
    """
    by_prefix = {}
    for path in sorted(data_dir.iterdir()) if data_dir.is_dir() else ():
        match = sharding.parse_shard_filename(path.name)
        if match and path.is_file():
            by_prefix.setdefault(match, []).append(path)
    found = {}
    for split in splits:
        for name in (split, *SPLIT_ALIASES.get(split, ())):
            if name in by_prefix:
                found.setdefault(split, []).extend(by_prefix.pop(name))
    unmatched = sorted(by_prefix)
    names = ", ".join(
        f"{split} ({', '.join(SPLIT_ALIASES[split])})"
        if SPLIT_ALIASES.get(split) else split for split in splits)
    if not found:
        held = (f"; it holds shards of no known split: "
                f"{', '.join(p + '-*' for p in unmatched)}"
                if unmatched else "")
        raise DataError(
            f"no {MANIFEST_NAME} and no shards named <split>-0000K-of-0000N "
            f"for a split among {names} in {data_dir}{held} (run `tfcnn "
            f"ingest` first?). Received: data_dir={data_dir}")
    if unmatched:
        console.progress(
            f"warning: {data_dir}: shards "
            f"{', '.join(p + '-*' for p in unmatched)} match no split "
            f"({names}) and are not read")
    return found


def _check_labels(scans, names, label_offset):
    """Checks every shard's label range; returns the class names (inferred
    from the largest label when ``names`` is None)."""
    ranges = [(path, scan.min_label + label_offset,
               scan.max_label + label_offset)
              for shards in scans.values() for path, scan in shards
              if scan.records]
    if not ranges:
        first_shard = next(iter(scans.values()))[0][0]
        raise DataError(f"the shards in {first_shard.parent} hold no records")
    inferred = names is None
    if inferred:
        lowest = min(low for _, low, _ in ranges)
        if lowest > 0:
            raise DataError(
                f"no record has label 0 after label_offset={label_offset} "
                f"(the smallest is {lowest}): {OFFSET_HINT}, or give "
                "num_classes or labels_file. Received: "
                f"label_offset={label_offset}")
        names = [str(i) for i in range(max(h for _, _, h in ranges) + 1)]
    for path, low, high in ranges:
        for label in (low, high):
            if not 0 <= label < len(names):
                hint = (f"; {OFFSET_HINT}" if label == len(names) else "")
                raise DataError(
                    f"{path}: label {label - label_offset} with "
                    f"label_offset={label_offset} falls outside "
                    f"[0, {len(names)}) for {len(names)} classes{hint}. "
                    f"Received: label_offset={label_offset}")
    return names


def read_labels_file(path, key="labels file"):
    """Class names from a labels file: one per line, blank lines skipped.

    Args:
        path: str or Path.
        key: str, what the file is called in the error (the recipe key
            that named it, say). Defaults to ``"labels file"``.

    Returns:
        list of str, in label order.

    Raises:
        DataError: the file cannot be read as UTF-8 text or names no
            class.
    """
    try:
        lines = storage.path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise DataError(f"cannot read {key} {path}: {reason}") from None
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise DataError(f"{key} {path} has no class names")
    return names


def _class_names(num_classes, labels_file, class_names):
    given = sum(x is not None for x in (num_classes, labels_file,
                                         class_names))
    if given == 0:
        return None
    if given > 1:
        raise DataError(
            "describe shards without a manifest with at most one of "
            "num_classes, labels_file or class_names. Received: "
            f"num_classes={num_classes}, labels_file={labels_file}, "
            f"class_names={'...' if class_names else class_names}")
    if labels_file is not None:
        return read_labels_file(labels_file)
    if class_names is not None:
        return [str(name) for name in class_names]
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or (
            num_classes < 1):
        raise DataError(
            f"num_classes must be a positive integer. "
            f"Received: num_classes={num_classes!r}")
    return [str(i) for i in range(num_classes)]
