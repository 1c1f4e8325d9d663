"""Tests for tfcnn.data.preprocess: decode and resize to the host size."""

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from tests.data import shard_files
from tfcnn.data import preprocess


@pytest.mark.parametrize("height, width", [
    (40, 60), (60, 40), (16, 16), (10, 12), (300, 17)])
def test_resize_shorter_and_centre_crop_shape_and_dtype(height, width):
    image = np.zeros((height, width, 3), np.float32)
    out = preprocess.resize_shorter_and_centre_crop(image, 16)
    assert out.shape == (16, 16, 3)
    assert out.dtype == tf.uint8


def test_resize_keeps_the_centre_of_the_longer_side():
    # Left third 0, middle third 100, right third 200; the centre square
    # of a 30x90 image is the middle third.
    image = np.repeat(np.array([0, 100, 200], np.uint8), 30)
    image = np.broadcast_to(image[None, :, None], (30, 90, 3))
    out = preprocess.resize_shorter_and_centre_crop(image, 10).numpy()
    # The square is cut before resizing: nothing of the sides bleeds in.
    np.testing.assert_array_equal(out, np.full((10, 10, 3), 100))


def test_shrinking_2x_averages_the_covered_pixels():
    # Halving: each output pixel is the mean of a 2x2 block (box filter).
    image = np.random.default_rng(1).integers(0, 256, (8, 8, 3))
    expected = image.reshape(4, 2, 4, 2, 3).mean(axis=(1, 3))
    out = preprocess.resize_square(image.astype(np.uint8), 4).numpy()
    np.testing.assert_allclose(out, np.round(expected), atol=1)


def test_shrinking_less_than_2x_is_bilinear():
    image = np.random.default_rng(2).integers(0, 256, (15, 15, 3))
    expected = tf.image.resize(image, [10, 10]).numpy()
    out = preprocess.resize_square(image.astype(np.uint8), 10).numpy()
    np.testing.assert_allclose(out, np.round(expected), atol=1)


def test_enlarging_and_same_size():
    image = shard_files.constant_image(9, 5, 5)
    np.testing.assert_array_equal(preprocess.resize_square(image, 7), 9)
    np.testing.assert_array_equal(preprocess.resize_square(image, 5), image)


def test_decode_image_channels():
    grey = np.full((4, 5, 1), 9, np.uint8)
    out = preprocess.decode_image(tf.io.encode_png(grey))
    assert out.shape == (4, 5, 3)
    assert out.dtype == tf.uint8


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_composited_over_white_as_ingest_stores_it(mode):
    # Serving decodes an uploaded PNG with transparency to what ingest
    # --lossless stored for the same file in training: composited over
    # white.
    import io

    from PIL import Image

    from tfcnn.data import image_check

    rng = np.random.default_rng(0)
    channels = len(mode)
    pixels = rng.integers(0, 256, (6, 7, channels), dtype=np.uint8)
    pixels[0, :, -1] = 0      # fully transparent: white, whatever the colour
    pixels[1, :, -1] = 255    # opaque: the colour itself
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze() if channels == 1 else pixels,
                    mode).save(buffer, "PNG")
    encoded = buffer.getvalue()

    served = preprocess.decode_image(encoded).numpy()
    stored = image_check.check_image_bytes(
        encoded, storage=image_check.Storage(lossless=True))
    ingested = tf.io.decode_png(stored.encoded, channels=3).numpy()

    assert stored.note and "alpha" in stored.note
    np.testing.assert_array_equal(served[0], 255)
    colour = pixels[1, :, :-1]
    np.testing.assert_array_equal(
        served[1], np.broadcast_to(colour, (7, 3)))
    assert np.abs(served.astype(int) - ingested).max() <= 1


def test_decode_image_keeps_opaque_rgb_exactly():
    image = np.random.default_rng(1).integers(0, 256, (5, 6, 3), np.uint8)
    out = preprocess.decode_image(tf.io.encode_png(image)).numpy()
    np.testing.assert_array_equal(out, image)


def test_decode_and_resize_png_is_decode_then_resize():
    image = np.random.default_rng(0).integers(
        0, 256, (37, 51, 3), dtype=np.uint8)
    encoded = shard_files.encode(image, "png")
    expected = preprocess.resize_shorter_and_centre_crop(image, 24)
    np.testing.assert_array_equal(
        preprocess.decode_and_resize(encoded, 24), expected)


@pytest.mark.parametrize("height, width, size, tolerance", [
    (300, 451, 256, 0.5),   # DCT ratio 1: the centre square decoded alone
    (400, 600, 128, 4.0),   # ratio 2: the DCT filters differently
    (512, 712, 96, 4.0),    # ratio 4
])
def test_jpeg_fast_path_matches_the_plain_path(height, width, size,
                                               tolerance):
    photo = skimage.data.chelsea()[:height, :width]
    photo = np.asarray(tf.image.resize(photo, [height, width]), np.uint8)
    encoded = shard_files.encode(photo, "jpeg")
    fast = preprocess.decode_and_resize(encoded, size).numpy()
    plain = preprocess.resize_shorter_and_centre_crop(
        preprocess.decode_image(encoded), size).numpy()
    assert fast.shape == (size, size, 3)
    assert fast.dtype == np.uint8
    error = np.abs(fast.astype(float) - plain.astype(float))
    assert error.mean() < tolerance


def test_jpeg_at_the_host_size_is_not_resized():
    image = shard_files.constant_image(77, 16, 20)
    encoded = shard_files.encode(image, "jpeg")
    out = preprocess.decode_jpeg_centre_square(encoded, 16).numpy()
    np.testing.assert_allclose(out, 77, atol=2)


def test_decode_and_resize_runs_in_a_graph():
    encoded = shard_files.encode(shard_files.constant_image(5, 30, 40))
    dataset = tf.data.Dataset.from_tensors(encoded).map(
        lambda e: preprocess.decode_and_resize(e, 8))
    assert dataset.element_spec.shape.as_list() == [8, 8, 3]
    assert next(iter(dataset)).dtype == tf.uint8


# Raw records and the Inception crop ----------------------------------------

def _raw_record(pixels):
    pixels = np.asarray(pixels, np.uint8)
    return (tf.constant(pixels.tobytes()), tf.constant("raw"),
            pixels.shape[0], pixels.shape[1])


@pytest.mark.parametrize("height, width, size", [
    (16, 16, 16), (20, 30, 16), (40, 33, 16), (9, 12, 16)])
def test_raw_records_decode_like_the_same_pixels(height, width, size):
    pixels = np.random.default_rng(0).integers(
        0, 256, (height, width, 3)).astype(np.uint8)
    out = preprocess.decode_record(*_raw_record(pixels), size)
    np.testing.assert_array_equal(
        out, preprocess.resize_shorter_and_centre_crop(pixels, size))
    # A whole batch at once gives the same pixels.
    batch = preprocess.decode_raw_batch(
        tf.constant([pixels.tobytes()] * 3), (height, width), size)
    assert batch.dtype == tf.uint8 and batch.shape == (3, size, size, 3)
    for image in batch:
        np.testing.assert_array_equal(image, out)


def test_a_raw_record_that_looks_like_a_jpeg_is_read_as_raw():
    # Raw pixels can start with the JPEG signature (FF D8 FF) by chance.
    pixels = np.full((4, 4, 3), 7, np.uint8)
    pixels[0, 0] = (0xFF, 0xD8, 0xFF)
    out = preprocess.decode_record(*_raw_record(pixels), 4)
    np.testing.assert_array_equal(out, pixels)


def test_decode_record_of_encoded_images_is_decode_and_resize():
    for fmt in ("jpeg", "png"):
        encoded = shard_files.encode(
            np.random.default_rng(1).integers(
                0, 256, (30, 50, 3)).astype(np.uint8), fmt)
        out = preprocess.decode_record(encoded, tf.constant(fmt), 0, 0, 16)
        np.testing.assert_array_equal(
            out, preprocess.decode_and_resize(encoded, 16))


def test_raw_record_of_the_wrong_length_fails():
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocess.decode_record(tf.constant(b"\0" * 10), tf.constant("raw"),
                                 2, 2, 2)


def _inception(encoded, image_format="jpeg", height=0, width=0, crop=12,
               resize_size=16, seed=None):
    return preprocess.decode_inception_crop(
        encoded, tf.constant(image_format), height, width, crop_size=crop,
        resize_size=resize_size, seed=seed).numpy()


@pytest.mark.parametrize("fmt", ["jpeg", "png", "raw"])
def test_inception_crop_lies_in_the_centre_of_the_host_image(fmt):
    colour = np.array([200, 120, 40], np.uint8)
    pixels = np.broadcast_to(colour, (40, 60, 3))
    if fmt == "raw":
        args = _raw_record(pixels)
    else:
        args = (shard_files.encode(pixels, fmt), tf.constant(fmt), 0, 0)
    out = preprocess.decode_inception_crop(*args, crop_size=12, resize_size=16)
    assert out.dtype == tf.uint8 and out.shape == (16, 16, 3)
    out = out.numpy().astype(int)
    # The 12x12 crop in the centre (offset (16 - 12) // 2 = 2), zeros
    # around it, where the model's centre crop never looks.
    np.testing.assert_allclose(out[2:14, 2:14], np.broadcast_to(
        colour, (12, 12, 3)), atol=3)
    mask = np.ones((16, 16), bool)
    mask[2:14, 2:14] = False
    assert not out[mask].any()


def test_inception_windows_cover_8_to_100_percent_at_3_4_to_4_3():
    shape = tf.constant([300, 400, 3])
    areas, aspects = [], []
    for _ in range(300):
        top, left, height, width = preprocess._inception_window(
            shape, 224, 256, None).numpy()
        assert 0 <= top and top + height <= 300
        assert 0 <= left and left + width <= 400
        areas.append(height * width / (300 * 400))
        aspects.append(width / height)
    assert min(areas) >= 0.08 - 0.01 and max(areas) <= 1.0
    # Window sides are whole pixels: the ratio is within rounding.
    assert min(aspects) >= 0.75 - 0.02 and max(aspects) <= 4 / 3 + 0.02
    # Random: small and large windows both occur.
    assert min(areas) < 0.2 and max(areas) > 0.6


def test_inception_crops_differ_and_show_the_window():
    # A horizontal ramp: a window's mean brightness says where it lies.
    ramp = np.broadcast_to(np.linspace(0, 255, 120)[None, :, None],
                           (90, 120, 3)).astype(np.uint8)
    encoded = shard_files.encode(ramp, "png")
    means = {round(float(_inception(encoded, "png")[2:14, 2:14].mean()))
             for _ in range(20)}
    assert len(means) > 5


def test_inception_crop_of_a_jpeg_decodes_only_the_window(monkeypatch):
    # The fused op reads the sampled window; the whole image is never
    # decoded (Model Garden's decode_and_crop_jpeg).
    calls = []
    original = tf.io.decode_and_crop_jpeg
    monkeypatch.setattr(tf.io, "decode_and_crop_jpeg", lambda *a, **k: (
        calls.append(a[1]), original(*a, **k))[1])
    monkeypatch.setattr(tf.io, "decode_image", None)
    encoded = shard_files.encode(np.zeros((50, 70, 3), np.uint8), "jpeg")
    assert _inception(encoded).shape == (16, 16, 3)
    assert len(calls) == 1


def test_inception_pixels_match_the_encoded_path_for_a_constant_image():
    image = np.full((30, 40, 3), 90, np.uint8)
    out = preprocess.inception_crop(image, crop_size=8, resize_size=10).numpy()
    assert (out[1:9, 1:9] == 90).all() and out[0].sum() == 0


def test_inception_crop_larger_than_the_host_size_is_rejected():
    with pytest.raises(ValueError,
                       match="Received: crop_size=20, resize_size=16"):
        preprocess.inception_crop(np.zeros((8, 8, 3), np.uint8),
                                  crop_size=20, resize_size=16)
