"""Tests for tfcnn.augment.crop.RandomOrCentreCrop."""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from tests.layer_contract import assert_preprocessing_layer_contract
from tfcnn.augment import RandomOrCentreCrop


def _position_image(batch, height, width):
    # Pixel (r, c) holds r in channel 0 and c in channel 1.
    rows, cols = np.meshgrid(np.arange(height), np.arange(width),
                             indexing="ij")
    image = np.stack([rows, cols, np.zeros_like(rows)], -1)
    return np.broadcast_to(image, (batch, height, width, 3)).astype(np.uint8)


def test_contract():
    images = _position_image(2, 12, 10)
    assert_preprocessing_layer_contract(RandomOrCentreCrop(8, seed=1),
                                        images, (2, 8, 8, 3), num_weights=0)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_keeps_dtype(dtype):
    images = _position_image(3, 12, 10).astype(dtype)
    layer = RandomOrCentreCrop(8, seed=0)
    assert layer(images, training=True).dtype == dtype
    assert layer(images).dtype == dtype


def test_inference_crops_the_centre():
    images = _position_image(2, 13, 10)
    out = RandomOrCentreCrop(8)(images).numpy()
    # Offsets (13 - 8) // 2 = 2 and (10 - 8) // 2 = 1.
    np.testing.assert_array_equal(out[:, 0, 0, :2], [[2, 1], [2, 1]])
    np.testing.assert_array_equal(out, images[:, 2:10, 1:9])


def test_training_crops_are_contiguous_windows():
    images = _position_image(64, 12, 10)
    out = RandomOrCentreCrop(8, seed=3)(images, training=True).numpy()
    tops, lefts = out[:, 0, 0, 0], out[:, 0, 0, 1]
    for top, left, crop in zip(tops, lefts, out):
        np.testing.assert_array_equal(
            crop, images[0, top:top + 8, left:left + 8])


def test_training_offsets_are_uniform_over_the_valid_range():
    height, width, size = 12, 9, 8
    images = _position_image(6000, height, width)
    out = RandomOrCentreCrop(size, seed=7)(images, training=True).numpy()
    positions = out[:, 0, 0, 0] * (width - size + 1) + out[:, 0, 0, 1]
    counts = np.bincount(positions, minlength=5 * 2)
    assert counts.size == (height - size + 1) * (width - size + 1)
    # Chi-square goodness of fit to the uniform law over all 10 offsets.
    assert scipy.stats.chisquare(counts).pvalue > 0.01
    # Each axis alone too: every valid offset, none outside.
    assert set(out[:, 0, 0, 0]) == set(range(height - size + 1))
    assert set(out[:, 0, 0, 1]) == set(range(width - size + 1))


def test_each_call_draws_new_offsets_but_a_seed_repeats_them():
    images = _position_image(16, 12, 12)
    first = RandomOrCentreCrop(8, seed=5)
    a = first(images, training=True).numpy()
    b = first(images, training=True).numpy()
    c = RandomOrCentreCrop(8, seed=5)(images, training=True).numpy()
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_input_smaller_than_the_crop():
    with pytest.raises(ValueError, match="must be >= size=8"):
        RandomOrCentreCrop(8)(np.zeros((1, 6, 10, 3)))


def test_bad_size():
    with pytest.raises(ValueError, match="Received: size=0"):
        RandomOrCentreCrop(0)


def test_dynamic_shapes_in_a_graph():
    layer = RandomOrCentreCrop(4, seed=0)
    function = tf.function(lambda x: layer(x, training=True),
                           input_signature=[tf.TensorSpec(
                               [None, None, None, 3], tf.uint8)])
    assert function(np.zeros((3, 7, 9, 3), np.uint8)).shape == (3, 4, 4, 3)


def test_random_false_crops_the_centre_in_training():
    layer = RandomOrCentreCrop(3, random=False)
    images = np.arange(2 * 5 * 6 * 1).reshape(2, 5, 6, 1)
    np.testing.assert_array_equal(layer(images, training=True),
                                  images[:, 1:4, 1:4])
    assert RandomOrCentreCrop.from_config(layer.get_config()).random is False
