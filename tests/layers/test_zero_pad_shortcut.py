"""Tests for tfcnn.layers.zero_pad_shortcut: ResNet's option A shortcut."""

import keras
import numpy as np
import pytest

from tests.layer_contract import assert_layer_contract
from tfcnn.layers import ZeroPadShortcut


def test_contract():
    assert_layer_contract(ZeroPadShortcut, dict(channels=6, strides=2),
                          (2, 5, 5, 3), (2, 3, 3, 6), 0)


def test_zero_pad_shortcut_subsamples_and_pads_channels():
    x = np.arange(2 * 5 * 5 * 3, dtype="float32").reshape(2, 5, 5, 3)
    layer = ZeroPadShortcut(8, strides=2, name="pad")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 3, 3, 8) == layer.compute_output_shape(x.shape)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 3:], 0.0)
    assert not layer.weights
    clone = ZeroPadShortcut.from_config(layer.get_config())
    assert (clone.channels, clone.strides) == (8, 2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=0), "Received: channels=0"),
    (dict(channels=4, strides=True), "Received: strides=True"),
])
def test_zero_pad_shortcut_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ZeroPadShortcut(**kwargs)


def test_zero_pad_shortcut_cannot_drop_channels():
    with pytest.raises(ValueError, match="at most channels=2"):
        ZeroPadShortcut(2)(np.zeros((1, 4, 4, 3), "float32"))
