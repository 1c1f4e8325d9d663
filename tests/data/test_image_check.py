"""Tests for tfcnn.data.image_check: every file kind ingest must handle."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.data import image_files
from tfcnn.data import image_check

LOSSLESS = image_check.Storage(lossless=True)


@pytest.mark.parametrize("kind", sorted(image_files.GOOD_KINDS))
def test_good_kinds_decode_to_8bit_rgb_lossless(kind):
    data = image_files.encode_kind(kind, seed=1)
    checked = image_check.check_image_bytes(data, storage=LOSSLESS)
    assert not checked.skipped, checked.skip_reason
    assert (checked.height, checked.width) == (image_files.HEIGHT,
                                               image_files.WIDTH)
    decoded = tf.io.decode_image(checked.encoded, channels=3,
                                 expand_animations=False).numpy()
    assert decoded.shape == (image_files.HEIGHT, image_files.WIDTH, 3)
    assert decoded.dtype == np.uint8
    if image_files.GOOD_KINDS[kind]:
        assert checked.encoded == data  # stored as the original bytes
        assert checked.note == ""
        assert checked.image_format == ("jpeg" if kind.endswith("jpeg")
                                        else "png")
        return
    assert checked.image_format == "png"
    assert checked.note  # the manifest says what was converted
    expected = image_files.expected_pixels(kind, seed=1)
    # Pillow composites alpha in integer arithmetic: off by one at most.
    atol = 1 if kind in ("rgba_png", "la_png") else 0
    np.testing.assert_allclose(decoded.astype(int), expected.astype(int),
                               atol=atol, rtol=0)


@pytest.mark.parametrize("kind", sorted(image_files.GOOD_KINDS))
def test_good_kinds_are_stored_as_jpeg_by_default(kind):
    """TF Model Garden's default classification Parser decodes with
    extract_jpeg_shape and decode_and_crop_jpeg, which fail on PNG."""
    data = image_files.encode_kind(kind, seed=1)
    checked = image_check.check_image_bytes(data)
    assert checked.image_format == "jpeg"
    shape = tf.image.extract_jpeg_shape(checked.encoded).numpy()
    assert list(shape[:2]) == [image_files.HEIGHT, image_files.WIDTH]
    decoded = tf.image.decode_and_crop_jpeg(
        checked.encoded, [0, 0, shape[0], shape[1]], channels=3).numpy()
    if kind.endswith("jpeg") and image_files.GOOD_KINDS[kind]:
        assert checked.encoded == data and checked.note == ""
        return
    assert checked.note.endswith("stored as JPEG (quality 95)")
    if image_files.GOOD_KINDS[kind]:  # 8-bit RGB or grey PNG
        expected = tf.io.decode_png(data, channels=3).numpy()
    else:
        expected = image_files.expected_pixels(kind, seed=1)
    error = np.abs(decoded.astype(int) - expected.astype(int))
    # 1-bit noise, all edges, is JPEG's worst case (--lossless keeps it).
    assert error.mean() < (20 if kind == "bilevel_png" else 4), (
        kind, error.mean())


def test_grayscale_jpeg_decodes_to_equal_channels():
    checked = image_check.check_image_bytes(
        image_files.encode_kind("gray_jpeg"))
    decoded = tf.io.decode_jpeg(checked.encoded, channels=3).numpy()
    np.testing.assert_array_equal(decoded[..., 0], decoded[..., 1])
    np.testing.assert_array_equal(decoded[..., 0], decoded[..., 2])


@pytest.mark.parametrize("kind", sorted(image_files.BAD_KINDS))
def test_bad_kinds_are_skipped_with_a_reason(kind):
    checked = image_check.check_image_bytes(image_files.encode_kind(kind))
    assert checked.skipped
    assert checked.encoded is None
    assert image_files.BAD_KINDS[kind] in checked.skip_reason


def test_pixel_limit_is_checked_before_decoding():
    data = image_files.encode_kind("rgb_png")
    pixels = image_files.HEIGHT * image_files.WIDTH
    assert not image_check.check_image_bytes(data, max_pixels=pixels).skipped
    skipped = image_check.check_image_bytes(data, max_pixels=pixels - 1)
    assert f"max_pixels={pixels - 1}" in skipped.skip_reason


def test_pillow_global_limit_is_restored():
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    image_check.check_image_bytes(image_files.encode_kind("bomb_png"))
    assert Image.MAX_IMAGE_PIXELS == before


def test_unreadable_path_is_skipped(tmp_path):
    checked = image_check.check_image(tmp_path / "missing.jpg")
    assert "unreadable" in checked.skip_reason


def test_check_images_keeps_order(tmp_path):
    paths = [image_files.write_kind(tmp_path / f"{i}.jpg", kind)
             for i, kind in enumerate(["rgb_jpeg", "zero_byte", "gray_png"])]
    results = image_check.check_images(paths)
    assert [r.skipped for r in results] == [False, True, False]


def test_fifo_is_skipped_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert image_check.check_image(fifo).skip_reason == "not a regular file"


def test_oversized_file_is_skipped_before_reading(tmp_path):
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as f:
        f.truncate(image_check.max_file_bytes(10) + 1)  # sparse: no disk
    assert "larger than any image" in image_check.check_image(
        path, max_pixels=10).skip_reason


# Compact and raw storage ---------------------------------------------------

def _smooth(width, height, seed=0):
    """Low-frequency RGB (a few periods across the image) as uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    channels = [127.5 + 100 * np.sin(2 * np.pi * (f1 * x + f2 * y) + phase)
                for f1, f2, phase in rng.uniform(0.5, 3.0, (3, 3))]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def _jpeg_bytes(width, height, seed=0, mode="RGB"):
    image = Image.fromarray(_smooth(width, height, seed))
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("storage, size, expected", [
    (image_check.Storage(max_side=100), (400, 300), (100, 75)),
    (image_check.Storage(max_side=100), (300, 400), (75, 100)),
    (image_check.Storage(max_side=100), (100, 40), None),
    (image_check.Storage(shorter_side=64), (400, 300), (85, 64)),
    (image_check.Storage(shorter_side=64), (3, 500), None),
    (image_check.Storage(shorter_side=2), (3, 500), (2, 333)),
    (image_check.Storage(max_side=10), (1000, 3), (10, 1)),
    (image_check.Storage(), (4000, 3000), None),
])
def test_storage_target_size(storage, size, expected):
    assert storage.target_size(*size) == expected


def test_compact_downscales_large_jpegs_and_keeps_small_ones():
    storage = image_check.Storage(shorter_side=64, jpeg_quality=90)
    large = _jpeg_bytes(200, 160)
    result = image_check.check_image_bytes(large, storage=storage)
    assert (result.image_format, result.height, result.width) == (
        "jpeg", 64, 80)
    assert result.resized and len(result.encoded) < len(large)
    decoded = np.asarray(Image.open(io.BytesIO(result.encoded)))
    assert decoded.shape == (64, 80, 3)
    # A high-quality downscale: close to an exact area average of the
    # source (200x160 -> 80x64 is 2.5x; compare at the 40x32 box average).
    source = np.asarray(Image.open(io.BytesIO(large)), np.float64)
    box = source.reshape(32, 5, 40, 5, 3).mean(axis=(1, 3))
    ours = decoded.astype(np.float64).reshape(32, 2, 40, 2, 3).mean(
        axis=(1, 3))
    assert np.abs(ours - box).mean() < 3.0
    small = _jpeg_bytes(60, 50)
    kept = image_check.check_image_bytes(small, storage=storage)
    assert kept.encoded == small and not kept.resized


def test_compact_converts_then_downscales_other_formats():
    storage = image_check.Storage(max_side=16)
    rgba = image_files.encode_kind("rgba_png")
    result = image_check.check_image_bytes(rgba, storage=storage)
    assert result.image_format == "jpeg" and result.resized
    assert max(result.height, result.width) == 16
    assert "alpha" in result.note
    grey = image_check.check_image_bytes(
        _jpeg_bytes(40, 20, mode="L"), storage=storage)
    # Grey stays one channel; decoders expand it as they do originals.
    assert Image.open(io.BytesIO(grey.encoded)).mode == "L"
    assert (grey.height, grey.width) == (8, 16)


@pytest.mark.parametrize("kind", ["rgb_png", "gray_png", "rgba_png",
                                  "palette_png", "rgb_jpeg"])
def test_raw_stores_the_rgb_pixels(kind):
    encoded = image_files.encode_kind(kind)
    result = image_check.check_image_bytes(
        encoded, storage=image_check.Storage(raw=True))
    assert result.image_format == "raw" and not result.resized
    pixels = np.frombuffer(result.encoded, np.uint8).reshape(
        result.height, result.width, 3)
    if kind in ("rgb_jpeg", "gray_png"):
        expected = np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))
    else:
        expected = image_files.expected_pixels(kind)
    np.testing.assert_array_equal(pixels, expected)


def test_raw_with_a_size_limit_is_downscaled_first():
    result = image_check.check_image_bytes(
        _jpeg_bytes(64, 48), storage=image_check.Storage(max_side=32,
                                                         raw=True))
    assert (result.image_format, result.height, result.width) == (
        "raw", 24, 32)
    assert result.resized and len(result.encoded) == 24 * 32 * 3


def test_bad_files_are_still_skipped_under_compact_storage():
    storage = image_check.Storage(shorter_side=8, raw=True)
    truncated = image_files.encode_kind("truncated_jpeg")
    assert "truncated" in image_check.check_image_bytes(
        truncated, storage=storage).skip_reason
