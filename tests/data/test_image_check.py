"""Tests for tfcnn.data.image_check: every file kind ingest must handle."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.data import image_files
from tfcnn.data import image_check


@pytest.mark.parametrize("kind", sorted(image_files.GOOD_KINDS))
def test_good_kinds_decode_to_8bit_rgb(kind):
    data = image_files.encode_kind(kind, seed=1)
    checked = image_check.check_image_bytes(data)
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
