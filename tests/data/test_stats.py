"""Tests for tfcnn.data.stats against a NumPy float64 computation."""

import json
import os
import re
import shlex

import numpy as np
import pytest

from tests.data import reference_shards
from tests.data.test_readers import tfds_dir  # noqa: F401 - fixture
from tfcnn import cli
from tfcnn.data import preprocess
from tfcnn.data import stats as stats_lib
from tfcnn.data.classification_ingest import ingest
from tfcnn.data.classification_ingest import is_complete
from tfcnn.data.manifest import Manifest
from tfcnn.errors import DataError

SIZE = 16
RTOL = 1e-4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Ingested JPEGs of varied shapes (so the resize matters)."""
    root = tmp_path_factory.mktemp("stats")
    rng = np.random.default_rng(0)
    for i in range(24):
        height, width = rng.integers(12, 48, 2)
        path = root / "src" / f"c{i % 3}" / f"{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(reference_shards.jpeg(i, int(height), int(width)))
    ingest(root / "src", root / "out", num_shards=2, workers=1,
           progress=False)
    return root / "out"


def _numpy_reference(data_dir, split="train"):
    """float64 statistics of the decoded training images, by NumPy alone."""
    from tfcnn.data import readers

    images = np.stack([
        preprocess.decode_and_resize(encoded, SIZE).numpy()
        for encoded, _ in readers.read_shards(data_dir, split)
    ]).astype(np.float64)
    pixels = images.reshape(-1, 3)
    covariance = np.cov(pixels, rowvar=False, bias=True)
    return images, pixels, covariance


def test_stats_match_numpy_float64(dataset):
    stats = stats_lib.compute_stats(dataset, resize_size=SIZE, progress=False)
    images, pixels, covariance = _numpy_reference(dataset)
    assert stats.num_images == len(images) == Manifest.load(
        dataset).count("train")
    assert stats.mean_image.shape == (SIZE, SIZE, 3)
    assert stats.mean_image.dtype == np.float32
    np.testing.assert_allclose(stats.mean_image, images.mean(axis=0),
                               rtol=RTOL, atol=1e-4)
    np.testing.assert_allclose(stats.channel_mean, pixels.mean(axis=0),
                               rtol=RTOL)
    np.testing.assert_allclose(stats.channel_std, pixels.std(axis=0),
                               rtol=RTOL)
    np.testing.assert_allclose(stats.covariance, covariance, rtol=RTOL)
    values = np.linalg.eigvalsh(covariance)[::-1]
    np.testing.assert_allclose(stats.eigenvalues, values, rtol=RTOL)
    assert np.all(np.diff(stats.eigenvalues) <= 0)
    # Columns are unit eigenvectors: C v = lambda v, V^T V = I.
    vectors = stats.eigenvectors
    np.testing.assert_allclose(covariance @ vectors,
                               vectors * stats.eigenvalues, rtol=RTOL,
                               atol=1e-6 * stats.eigenvalues[0])
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(3), atol=1e-10)
    largest = np.abs(vectors).argmax(axis=0)
    assert np.all(vectors[largest, np.arange(3)] > 0)


def test_stats_are_saved_and_named_in_the_manifest(dataset):
    stats = stats_lib.compute_stats(dataset, resize_size=SIZE, progress=False)
    manifest = Manifest.load(dataset)
    assert manifest.stats_path == dataset / "stats.npz"
    assert json.loads((dataset / "manifest.json").read_text())["stats"] == (
        "stats.npz")
    loaded = stats_lib.load_stats(dataset, resize_size=SIZE)
    for field in ("mean_image", "channel_mean", "channel_std", "covariance",
                  "eigenvalues", "eigenvectors"):
        np.testing.assert_array_equal(getattr(loaded, field),
                                      getattr(stats, field))
    assert (loaded.resize_size, loaded.num_images, loaded.split) == (
        SIZE, stats.num_images, "train")
    assert not [p for p in os.listdir(dataset) if p.endswith(".tmp")]
    # Recording the statistics does not make the ingest look incomplete.
    assert is_complete(dataset)
    with pytest.raises(DataError, match="--resize-size 32"):
        stats_lib.load_stats(dataset, resize_size=32)


def test_no_stats_is_an_error_naming_the_command(tmp_path):
    # Never a silent fallback to ImageNet's values.
    with pytest.raises(DataError, match=r"run `tfcnn stats ") as error:
        stats_lib.load_stats(tmp_path, resize_size=32)
    assert stats_lib.load_stats(tmp_path, required=False) is None
    # The advice is a command tfcnn accepts, at the size asked for.
    advice = re.search(r"run `tfcnn ([^`]*)`", str(error.value)).group(1)
    args = cli._parser().parse_args(shlex.split(advice))
    assert (args.command, args.data, args.resize_size) == (
        "stats", str(tmp_path), 32)


def test_stats_of_reference_shards(tmp_path):
    reference_shards.write_reference_shards(tmp_path, "train", 2, 3)
    manifest = Manifest.from_shards(tmp_path, num_classes=3, label_offset=-1)
    stats = stats_lib.compute_stats(manifest, resize_size=8, progress=False)
    assert stats.num_images == 6
    assert (tmp_path / "stats.npz").is_file()
    assert not (tmp_path / "manifest.json").exists()
    loaded = stats_lib.load_stats(tmp_path)
    np.testing.assert_array_equal(loaded.covariance, stats.covariance)


def test_stats_errors(dataset, tmp_path):
    with pytest.raises(DataError, match="no manifest.json and no shards"):
        stats_lib.compute_stats(tmp_path, resize_size=SIZE, progress=False)
    with pytest.raises(DataError, match="split='test'"):
        stats_lib.compute_stats(dataset, resize_size=SIZE, split="test",
                                progress=False)
    with pytest.raises(DataError, match="resize_size=0"):
        stats_lib.compute_stats(dataset, resize_size=0, progress=False)
    (tmp_path / "stats.npz").write_bytes(b"not an npz")
    with pytest.raises(DataError, match="cannot read statistics"):
        stats_lib.load_stats(tmp_path)


def test_cli_stats_of_reference_shards(tmp_path, capsys):
    from tfcnn import cli

    reference_shards.write_reference_shards(tmp_path, "train", 1, 3)
    assert cli.main(["stats", str(tmp_path), "--resize-size", "8"]) == 2
    assert "label_offset=-1" in capsys.readouterr().err
    assert cli.main(["stats", str(tmp_path), "--resize-size", "8",
                     "--label-offset", "-1"]) == 0
    assert stats_lib.load_stats(tmp_path, resize_size=8).num_images == 3


def test_undecodable_records_are_left_out_and_counted(tmp_path, capsys):
    written = reference_shards.write_reference_shards(tmp_path, "train", 1, 3)
    # A fourth record whose image bytes are not an image at all.
    import tensorflow as tf

    example = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[b"not an image"])),
        "image/class/label": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[1]))}))
    with tf.io.TFRecordWriter(str(tmp_path / "train-00000-of-00002")) as w:
        w.write(example.SerializeToString())
    manifest = Manifest.from_shards(tmp_path, num_classes=3, label_offset=-1)
    stats = stats_lib.compute_stats(manifest, resize_size=8)
    assert stats.num_images == len(written)
    assert "1 records that do not decode left out" in stats.line
    # The library returns its line; the command prints it.
    assert capsys.readouterr().out == ""


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Class folders of 24 JPEG photos (crops of scikit-image's) ~160x120."""
    import skimage.data
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    names = ("astronaut", "coffee", "chelsea", "rocket")
    for i in range(24):
        photo = getattr(skimage.data, names[i % 4])()[..., :3]
        height, width = (120, 160) if i % 3 else (160, 120)
        top = rng.integers(0, photo.shape[0] - 250 + 1)
        left = rng.integers(0, photo.shape[1] - 250 + 1)
        crop = Image.fromarray(photo[top:top + 250, left:left + 250])
        path = root / "src" / names[i % 4] / f"{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        crop.resize((width, height), Image.Resampling.LANCZOS).save(
            path, quality=95)
    return root


@pytest.mark.parametrize("storage", [{"shorter_side": 48},
                                     {"max_side": 64, "raw": True}])
def test_stats_of_compact_shards_equal_the_originals_within_jpeg_noise(
        photos, storage):
    """Statistics at 32x32 of shards stored at 48-64 pixels match those of
    the originals: downscaling once with Lanczos and storing (JPEG q90 or
    raw) moves the mean image by at most a few levels."""
    original, compact = photos / "original", photos / str(storage)
    for out, options in ((original, {}), (compact, storage)):
        if not out.exists():
            ingest(photos / "src", out, workers=1, progress=False,
                   **options)
    a = stats_lib.compute_stats(original, resize_size=32, progress=False)
    b = stats_lib.compute_stats(compact, resize_size=32, progress=False)
    assert a.num_images == b.num_images == 20
    difference = np.abs(a.mean_image - b.mean_image)
    assert difference.mean() < 1.5 and difference.max() < 8.0, (
        difference.mean(), difference.max())
    np.testing.assert_allclose(b.channel_mean, a.channel_mean, atol=1.5)
    # Resampling once (Lanczos) or twice moves contrast a little.
    np.testing.assert_allclose(b.channel_std, a.channel_std, rtol=0.04)
    np.testing.assert_allclose(b.eigenvalues, a.eigenvalues, rtol=0.06,
                               atol=0.01 * a.eigenvalues[0])
    np.testing.assert_allclose(np.abs(np.sum(
        a.eigenvectors * b.eigenvectors, axis=0)), 1.0, atol=0.01)


# tfds sources ---------------------------------------------------------------

def _tiny_tfds(tfds_dir):  # noqa: F811
    from tfcnn.data import readers

    return readers.describe_tfds("tfcnn_tiny_images", data_dir=tfds_dir)


def test_tfds_stats_equal_a_numpy_pass(tfds_dir):  # noqa: F811
    from tests.data import image_files
    from tfcnn.data import readers

    source = _tiny_tfds(tfds_dir)
    with pytest.raises(DataError, match=r"run `tfcnn stats RECIPE`"):
        stats_lib.load_tfds_stats(source, resize_size=12)
    result = stats_lib.compute_tfds_stats(
        source, readers.read_tfds(source.name, "train", data_dir=tfds_dir),
        resize_size=12, progress=False)
    # The 6 lossless 12x16 training images, their centre 12x12 squares
    # (the shorter side is already 12), in NumPy float64.
    images = np.stack([image_files.rgb_array(i, 12, 16)[:, 2:14]
                       for i in range(6)]).astype(np.float64)
    pixels = images.reshape(-1, 3)
    assert result.num_images == 6 and result.resize_size == 12
    np.testing.assert_allclose(result.mean_image, images.mean(axis=0),
                               rtol=1e-6)
    np.testing.assert_allclose(result.channel_mean, pixels.mean(axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(result.covariance,
                               np.cov(pixels.T, bias=True), rtol=1e-9)
    loaded = stats_lib.load_tfds_stats(source, resize_size=12)
    np.testing.assert_array_equal(loaded.mean_image, result.mean_image)
    np.testing.assert_array_equal(loaded.eigenvectors, result.eigenvectors)
    # Keyed by split and size: another size has none yet.
    assert stats_lib.load_tfds_stats(source, resize_size=8,
                                     required=False) is None


def test_stats_command_on_a_tfds_recipe(tmp_path, tfds_dir,  # noqa: F811
                                        capsys):
    from tfcnn import cli
    from tfcnn import recipe as recipe_lib

    recipe = recipe_lib.recipe_from_dict({"data": {
        "source": "tfds", "tfds_name": "tfcnn_tiny_images",
        "tfds_data_dir": str(tfds_dir), "resize_size": 10,
        "crop_size": 8}})
    path = tmp_path / "tfds.toml"
    path.write_text(recipe_lib.dump_toml(recipe))
    assert cli.main(["stats", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["num_images"], summary["resize_size"]) == (6, 10)
    assert stats_lib.load_tfds_stats(_tiny_tfds(tfds_dir),
                                     resize_size=10).num_images == 6
