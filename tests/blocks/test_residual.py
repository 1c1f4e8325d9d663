"""Tests for tfcnn.blocks.residual: He et al. (2016)'s blocks and shortcuts."""

import keras
import numpy as np
import pytest

from tfcnn.blocks import residual


def _model(block, input_shape=(8, 8, 4), **kwargs):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, block(inputs, **kwargs))


@pytest.mark.parametrize("block, filters, out_channels", [
    (residual.basic_block, 4, 4), (residual.bottleneck_block, 2, 8)])
def test_residual_blocks_downsample_with_each_shortcut(block, filters,
                                                       out_channels):
    for shortcut in "ABC":
        _check_downsampling_block(block, filters, out_channels, shortcut)


def _check_downsampling_block(block, filters, out_channels, shortcut):
    keras.backend.clear_session()
    model = _model(block, filters=filters, strides=2, shortcut=shortcut,
                   name="b")
    assert model.output_shape == (None, 4, 4, out_channels)
    names = {layer.name for layer in model.layers}
    assert ("b_0_pad" in names) == (shortcut == "A")
    assert ("b_0_conv" in names) == (shortcut != "A")
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 4))
    y = keras.ops.convert_to_numpy(model(x.astype("float32")))
    assert np.all(y >= 0.0)  # the block ends with ReLU


def test_identity_shortcut_without_shape_change():
    model = _model(residual.basic_block, input_shape=(8, 8, 4), filters=4,
                   shortcut="B", name="b")
    names = {layer.name for layer in model.layers}
    assert "b_0_conv" not in names and "b_0_pad" not in names
    # The shortcut is the block input itself.
    assert model.get_layer("b_add").input[0] is model.input


def test_bad_shortcut_option_is_named():
    with pytest.raises(ValueError, match="Received: shortcut='D'"):
        _model(residual.basic_block, filters=4, shortcut="D", name="b")
