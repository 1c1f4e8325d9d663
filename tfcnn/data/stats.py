"""Dataset statistics: the mean image and the RGB principal components.

``compute_stats(data_dir)`` makes one streaming pass over the training
shards. Every image is brought to ``S x S`` by
``tfcnn.data.preprocess.decode_record`` (exactly what the training
pipeline feeds the model), and the pass accumulates

- the mean image ``[S, S, 3]``: the AlexNet paper subtracts "the mean
  activity over the training set from each pixel";
- the per-channel mean and standard deviation over all pixels;
- the 3x3 RGB covariance over all pixels and its eigen-decomposition, for
  AlexNet's PCA lighting ("add multiples of the found principal components,
  with magnitudes proportional to the corresponding eigenvalues times a
  random variable drawn from a Gaussian with mean zero and standard
  deviation 0.1").

All values are in pixel units of [0, 255] (the covariance and eigenvalues in
pixel units squared; the square root of an eigenvalue is the standard
deviation along that principal axis). The covariance is the population
covariance (divided by the pixel count, not count - 1).

A record whose image does not decode (possible in shards written by other
tools) is left out and counted in the result line; ``num_images`` says how
many images the statistics describe.

Precision: the accumulators are exact integers (int64 sums of uint8 values
and of their pairwise products), so the result does not depend on the order
of the pass or the size of the dataset; only the final divisions and the
eigen-decomposition round, in float64. The result is saved atomically as
``stats.npz`` beside the shards and named in ``manifest.json``.
"""

import dataclasses
import io
import math
import sys

import numpy as np

from tfcnn import atomic_files
from tfcnn import storage
from tfcnn.data import manifest as manifest_lib
from tfcnn.errors import DataError

_FORMAT_VERSION = 1
_FIELDS = ("mean_image", "channel_mean", "channel_std", "covariance",
           "eigenvalues", "eigenvectors")


@dataclasses.dataclass(frozen=True)
class DatasetStats:
    """Statistics of a split at host size ``S``, in pixel units of [0, 255].

    Attributes:
        resize_size: int, S.
        num_images: int, images the statistics were computed from.
        mean_image: ``(S, S, 3)`` float32, per-pixel mean.
        channel_mean: ``(3,)`` float64, RGB mean over all pixels.
        channel_std: ``(3,)`` float64, RGB standard deviation over all
            pixels (population).
        covariance: ``(3, 3)`` float64, RGB covariance over all pixels.
        eigenvalues: ``(3,)`` float64, of ``covariance``, descending.
        eigenvectors: ``(3, 3)`` float64, unit eigenvectors as columns in
            the order of ``eigenvalues``; each column's largest component is
            positive (a fixed sign, so files compare equal).
        split: str, the split they were computed from. Defaults to "train".
        line: str, the result line of the pass that computed them (what
            ``tfcnn stats`` prints); "" for statistics loaded from a file.
    """

    resize_size: int
    num_images: int
    mean_image: np.ndarray
    channel_mean: np.ndarray
    channel_std: np.ndarray
    covariance: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    split: str = "train"
    line: str = dataclasses.field(default="", compare=False, repr=False)


def compute_stats(data_dir, *, resize_size=256, progress=True, split="train",
                  batch_size=32):
    """Computes the statistics of a split and saves them beside the shards.

    Args:
        data_dir: str or Path of a shard folder, or a ``Manifest``. A folder
            without ``manifest.json`` (shards from other tools) is described
            by ``manifest.describe``; pass ``Manifest.from_shards(...,
            label_offset=-1)`` for 1-based labels. Without a manifest file,
            ``stats.npz`` is written but no manifest.
        resize_size: int, the host size S. Defaults to 256.
        progress: bool, show a progress bar. Defaults to True.
        split: str, the split to describe. Defaults to "train".
        batch_size: int, images per step of the pass. Defaults to 32.

    Returns:
        a ``DatasetStats`` whose ``line`` sums the pass up.

    Raises:
        DataError: no shards, no such split, or the split has no images.
    """
    from tfcnn.data import readers

    if (isinstance(resize_size, bool) or not isinstance(resize_size, int)
            or resize_size < 1):
        raise DataError(f"resize_size must be a positive integer. Received: "
                        f"resize_size={resize_size!r}")
    manifest = data_dir if isinstance(data_dir, manifest_lib.Manifest) else (
        manifest_lib.describe(data_dir))
    if not manifest.has_split(split):
        raise DataError(
            f"no {split} images in {manifest.data_dir} to compute statistics "
            f"from. Received: split={split!r}")
    # Labels play no part here, so they are not checked; a record that does
    # not decode (possible in shards from other tools, never in ours) is
    # left out and counted instead of ending the pass.
    images = readers.read_images(manifest.files(split), resize_size=resize_size)
    stats = _one_pass(images, resize_size=resize_size, split=split,
                      count=manifest.count(split), batch_size=batch_size,
                      progress=progress, where=manifest.data_dir)
    num_images = stats.num_images
    path = storage.path(manifest.data_dir) / manifest_lib.STATS_NAME
    save_stats(stats, path)
    if manifest.from_file:
        # Re-read: the manifest on disk is the one to amend.
        manifest_lib.Manifest.load(manifest.data_dir).with_stats(
            manifest_lib.STATS_NAME).save()
    left_out = manifest.count(split) - num_images
    mean = ", ".join(f"{v:.1f}" for v in stats.channel_mean)
    undecodable = (f" ({left_out} records that do not decode left out)"
                   if left_out else "")
    return dataclasses.replace(stats, line=(
        f"stats: {num_images} {split} images at {resize_size}x{resize_size}"
        f"{undecodable}: RGB mean ({mean}), eigenvalues "
        f"{np.array2string(stats.eigenvalues, precision=1)}; "
        f"wrote {path}"))


def compute_tfds_stats(source, examples, *, split="train", resize_size=256,
                       progress=True, batch_size=32):
    """Computes the statistics of a tfds split and caches them on disk.

    One pass over the split, each image decoded and resized by
    ``tfcnn.data.preprocess.decode_and_resize`` as training reads it.
    The result is saved in the prepared dataset's folder (``<data_dir>/
    <name>/<version>``, so keyed by dataset and version) as
    ``tfcnn_stats/<split>-<S>.npz``, where ``load_tfds_stats`` finds it.
    The dataset's task reads it (``Task.describe_tfds`` and
    ``Task.read_tfds``): only the images count here.

    Args:
        source: ``tfcnn.data.readers.TfdsSource`` of the dataset.
        examples: ``tf.data.Dataset`` of ``(encoded image, label)`` pairs
            of ``split`` (the label a class id or a mask).
        split: str, the tfds split ``examples`` hold. Defaults to "train".
        resize_size: int, the host size S. Defaults to 256.
        progress: bool, show a progress bar. Defaults to True.
        batch_size: int, images per step of the pass. Defaults to 32.

    Returns:
        a ``DatasetStats`` whose ``line`` sums the pass up.

    Raises:
        DataError: the split is empty.
    """
    from tfcnn.data import preprocess

    images = examples.map(
        lambda image, label: preprocess.decode_and_resize(image,
                                                          resize_size))
    stats = _one_pass(images, resize_size=resize_size, split=split,
                      count=source.count(split), batch_size=batch_size,
                      progress=progress, where=f"tfds dataset {source.name}")
    path = tfds_stats_path(source, split, resize_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_stats(stats, path)
    return dataclasses.replace(stats, line=(
        f"stats: {stats.num_images} {split} images of {source.name} at "
        f"{resize_size}x{resize_size}; wrote {path}"))


def tfds_stats_path(source, split, resize_size):
    """Where the statistics of a tfds split at host size S live.

    Args:
        source: ``tfcnn.data.readers.TfdsSource``.
        split: str, a tfds split (``"train"``, ``"train[:90%]"``).
        resize_size: int, S.

    Returns:
        Path inside the prepared dataset's versioned folder.
    """
    key = "".join(c if c.isalnum() else "_" for c in split)
    folder = storage.path(source.prepared_dir) / "tfcnn_stats"
    return folder / f"{key}-{resize_size}.npz"


def load_tfds_stats(source, *, split="train", resize_size=256,
                    required=True):
    """Loads the statistics ``compute_tfds_stats`` cached for a split.

    Args:
        source: ``tfcnn.data.readers.TfdsSource`` of the dataset.
        split: str. Defaults to "train".
        resize_size: int, the host size S. Defaults to 256.
        required: bool, raise when none were computed; False returns None.
            Defaults to True.

    Returns:
        a ``DatasetStats`` (or None, see ``required``).

    Raises:
        DataError: none computed (with ``required``), or unreadable.
    """
    path = tfds_stats_path(source, split, resize_size)
    if not path.is_file():
        if not required:
            return None
        raise DataError(
            f"no statistics of tfds dataset {source.name} ({split}) at "
            f"{resize_size}x{resize_size}: run `tfcnn stats RECIPE` (or "
            f"`tfcnn run RECIPE`) with data.source = \"tfds\", or set "
            f"augment.mean = \"imagenet\" for ImageNet's values. Received: "
            f"{path}")
    return _read(path, resize_size)


def _one_pass(images, *, resize_size, split, count, batch_size, progress,
              where):
    """Exact integer sums over uint8 ``[S, S, 3]`` images, finished."""
    import tensorflow as tf
    from tqdm import auto

    dataset = images.ignore_errors().batch(batch_size).map(
        _batch_sums, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
    image_sum = np.zeros((resize_size, resize_size, 3), np.int64)
    cross = np.zeros((3, 3), np.int64)
    num_images = 0
    steps = math.ceil(count / batch_size)
    with auto.tqdm(total=steps, unit="batch", desc="stats",
                   disable=not progress or not sys.stderr.isatty(),
                   file=sys.stderr) as bar:
        for batch_images, batch_sum, batch_cross in (
                dataset.as_numpy_iterator()):
            num_images += int(batch_images)
            image_sum += batch_sum
            cross += batch_cross
            bar.update(1)
    if num_images == 0:
        raise DataError(f"no readable {split} images in {where}")
    return _finish(image_sum, cross, num_images, resize_size, split)


def _batch_sums(images):
    """Exact integer sums of one batch: count, per-pixel sum, RGB x RGB."""
    import tensorflow as tf

    pixels = tf.cast(tf.reshape(images, [-1, 3]), tf.float64)
    # float64 is exact here: a batch's sums of products stay far below 2**53.
    cross = tf.cast(tf.matmul(pixels, pixels, transpose_a=True), tf.int64)
    image_sum = tf.reduce_sum(tf.cast(images, tf.int64), axis=0)
    return tf.shape(images, out_type=tf.int64)[0], image_sum, cross


def _finish(image_sum, cross, num_images, resize_size, split):
    n = num_images * resize_size * resize_size
    channel_sum = [int(v) for v in image_sum.sum(axis=(0, 1))]
    # Python integers: n * cross - sum * sum^T is exact at any dataset size.
    numerator = np.array(
        [[n * int(cross[i, j]) - channel_sum[i] * channel_sum[j]
          for j in range(3)] for i in range(3)], dtype=object)
    covariance = (numerator / (n * n)).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues = np.maximum(eigenvalues[order], 0.0)
    eigenvectors = eigenvectors[:, order]
    signs = np.sign(eigenvectors[np.argmax(np.abs(eigenvectors), axis=0),
                                 np.arange(3)])
    eigenvectors = eigenvectors * np.where(signs == 0, 1.0, signs)
    return DatasetStats(
        resize_size=resize_size, num_images=num_images,
        mean_image=(image_sum / num_images).astype(np.float32),
        channel_mean=np.array(channel_sum, np.float64) / n,
        channel_std=np.sqrt(np.diag(covariance)),
        covariance=covariance, eigenvalues=eigenvalues,
        eigenvectors=eigenvectors, split=split)


def save_stats(stats, path):
    """Writes ``stats`` as an ``.npz`` file atomically."""
    buffer = io.BytesIO()
    # The file keeps its key "size" (format 1), so older files still load.
    np.savez(buffer, format_version=_FORMAT_VERSION, size=stats.resize_size,
             num_images=stats.num_images, split=stats.split,
             **{name: getattr(stats, name) for name in _FIELDS})
    atomic_files.write_bytes_atomic(path, buffer.getvalue())


def load_stats(data_dir, *, resize_size=None, required=True):
    """Loads the statistics saved beside a shard folder's shards.

    Args:
        data_dir: str or Path of a shard folder, or a ``Manifest``.
        resize_size: int or None; when given, the stored statistics must
            be at this host size S. Defaults to None.
        required: bool, raise when no statistics were computed yet; False
            returns None then. Defaults to True.

    Returns:
        a ``DatasetStats`` (or None, see ``required``).

    Raises:
        DataError: no statistics (with ``required``), the statistics file
            is unreadable, or its size differs from ``resize_size``.
    """
    if isinstance(data_dir, manifest_lib.Manifest):
        path = data_dir.stats_path or (
            storage.path(data_dir.data_dir) / manifest_lib.STATS_NAME)
        folder = data_dir.data_dir
    elif (storage.path(data_dir) / manifest_lib.MANIFEST_NAME).exists():
        path = manifest_lib.Manifest.load(data_dir).stats_path
        folder = data_dir
    else:
        path = storage.path(data_dir) / manifest_lib.STATS_NAME
        folder = data_dir
    if path is None or not path.is_file():
        if not required:
            return None
        raise DataError(
            f"no statistics in {folder}: run `tfcnn stats {folder} "
            f"--resize-size {resize_size or 256}` (or `tfcnn run RECIPE`), "
            f"or set augment.mean = \"imagenet\" for ImageNet's values. "
            f"Received: {folder}")
    return _read(path, resize_size)


def _read(path, resize_size):
    try:
        with storage.open_file(path, "rb") as f, np.load(
                f, allow_pickle=False) as npz:
            stats = DatasetStats(
                resize_size=int(npz["size"]), num_images=int(npz["num_images"]),
                split=str(npz["split"]),
                **{name: npz[name] for name in _FIELDS})
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"cannot read statistics {path}: {error}") from None
    if resize_size is not None and stats.resize_size != resize_size:
        raise DataError(
            f"{path} holds statistics at {stats.resize_size}x"
            f"{stats.resize_size}, not {resize_size}x{resize_size}: use the "
            f"recipe they were computed for, or set data.resize_size = "
            f"{stats.resize_size} (`tfcnn stats "
            f"{path.parent} --resize-size {resize_size}` would replace them). "
            f"Received: resize_size={resize_size}")
    return stats
