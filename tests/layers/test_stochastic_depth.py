"""Tests for tfcnn.layers.stochastic_depth (Huang et al. 2016)."""

import keras
import numpy as np
import pytest

from tfcnn.layers import StochasticDepth


def test_contract_and_round_trip():
    layer = StochasticDepth(0.3, seed=1, name="drop")
    clone = StochasticDepth.from_config(layer.get_config())
    assert (clone.rate, clone.seed, clone.name) == (0.3, 1, "drop")
    shapes = [(2, 4, 4, 3), (2, 4, 4, 3)]
    assert layer.compute_output_shape(shapes) == (2, 4, 4, 3)
    inputs = [keras.Input((4, 4, 3)), keras.Input((4, 4, 3))]
    assert layer(inputs).shape == (None, 4, 4, 3)


def test_inference_is_the_plain_sum():
    rng = np.random.default_rng(0)
    shortcut, residual = rng.normal(size=(2, 8, 5, 5, 3)).astype("float32")
    y = StochasticDepth(0.5)([shortcut, residual], training=False)
    np.testing.assert_allclose(np.array(y), shortcut + residual, rtol=1e-6)


def test_training_drops_whole_branches_per_example():
    shortcut = np.zeros((2000, 2, 2, 1), "float32")
    residual = np.ones((2000, 2, 2, 1), "float32")
    y = np.array(StochasticDepth(0.25, seed=3)([shortcut, residual],
                                               training=True))
    # Each example keeps its whole branch, scaled by 1 / 0.75, or none.
    per_example = y.reshape(2000, -1)
    assert np.all(per_example == per_example[:, :1])
    kept = per_example[:, 0]
    assert np.all(np.isclose(kept, 0.0) | np.isclose(kept, 1 / 0.75))
    assert abs(np.mean(kept == 0) - 0.25) < 0.04
    assert abs(kept.mean() - 1.0) < 0.05


@pytest.mark.parametrize("rate", [1.0, -0.1, True])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match="Received: rate="):
        StochasticDepth(rate)
