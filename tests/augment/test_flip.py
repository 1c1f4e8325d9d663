"""Tests for tfcnn.augment.flip.RandomHorizontalFlip."""

import numpy as np
import pytest
import scipy.stats

from tests.layer_contract import assert_preprocessing_layer_contract
from tfcnn.augment import RandomHorizontalFlip


def _ramp(batch):
    # Column c holds c: a flip reverses the ramp.
    ramp = np.arange(6, dtype=np.uint8)[None, None, :, None]
    return np.broadcast_to(ramp, (batch, 4, 6, 3)).copy()


def test_contract():
    assert_preprocessing_layer_contract(RandomHorizontalFlip(seed=0),
                                        _ramp(2), (2, 4, 6, 3), num_weights=0)


def test_identity_at_inference():
    images = _ramp(8)
    np.testing.assert_array_equal(RandomHorizontalFlip()(images), images)


def test_flips_are_mirror_images_about_half_the_time():
    images = _ramp(4000)
    out = RandomHorizontalFlip(seed=11)(images, training=True).numpy()
    flipped = out[:, 0, 0, 0] == 5
    kept = out[:, 0, 0, 0] == 0
    assert np.all(flipped | kept)
    np.testing.assert_array_equal(out[flipped], images[flipped][:, :, ::-1])
    np.testing.assert_array_equal(out[kept], images[kept])
    # Two-sided binomial test of p = 0.5.
    test = scipy.stats.binomtest(int(flipped.sum()), len(flipped), 0.5)
    assert test.pvalue > 0.01


def test_rate():
    out = RandomHorizontalFlip(rate=0.0, seed=1)(_ramp(50), training=True)
    np.testing.assert_array_equal(out, _ramp(50))
    out = RandomHorizontalFlip(rate=1.0, seed=1)(_ramp(50), training=True)
    np.testing.assert_array_equal(out, _ramp(50)[:, :, ::-1])
    with pytest.raises(ValueError, match="Received: rate=2"):
        RandomHorizontalFlip(rate=2)
