"""The building blocks the models share (tfcnn/blocks, except context.py).

They live under tests/models because tfcnn/blocks is the models' room;
each test names the block it checks.
"""

import keras
import numpy as np
import pytest

import tfcnn.layers
from tfcnn.blocks import conv_norm_act
from tfcnn.blocks import residual


def _model(block, input_shape=(8, 8, 4), **kwargs):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, block(inputs, **kwargs))


@pytest.mark.parametrize("norm, layer_type, bias", [
    ("batch", keras.layers.BatchNormalization, False),
    ("group", tfcnn.layers.GroupNormalization, False),
    (None, None, True)])
def test_conv_norm_act_layers_and_names(norm, layer_type, bias):
    model = _model(conv_norm_act.conv_norm_act, filters=8, kernel_size=3,
                   norm=norm, norm_groups=4, name="stem")
    names = [layer.name for layer in model.layers[1:]]
    suffix = {"batch": ["stem_bn"], "group": ["stem_gn"], None: []}[norm]
    assert names == ["stem_conv", *suffix, "stem_relu"]
    assert model.get_layer("stem_conv").use_bias == bias
    if layer_type is not None:
        assert isinstance(model.layers[2], layer_type)


def test_conv_norm_act_dilation_uses_dilated_conv():
    model = _model(conv_norm_act.conv_norm_act, filters=8, kernel_size=3,
                   dilation_rate=2, name="d")
    layer = model.get_layer("d_conv")
    assert isinstance(layer, tfcnn.layers.DilatedConv2D)
    assert layer.dilation_rate == (2, 2)
    assert model.output_shape == (None, 8, 8, 8)


def test_conv_norm_act_rejects_bad_arguments():
    for kwargs, match in [
            (dict(strides=2, dilation_rate=2), "either strided or dilated"),
            (dict(norm="instance"), "Received: norm='instance'"),
            (dict(norm="group", norm_groups=0), "Received: norm_groups=0")]:
        with pytest.raises(ValueError, match=match):
            _model(conv_norm_act.conv_norm_act, filters=8, kernel_size=3,
                   name="bad", **kwargs)


def test_zero_gamma_starts_the_normalization_at_zero():
    model = _model(conv_norm_act.conv_norm_act, filters=8, kernel_size=1,
                   norm="group", norm_groups=2, zero_gamma=True, name="z")
    gamma = keras.ops.convert_to_numpy(model.get_layer("z_gn").gamma)
    np.testing.assert_array_equal(gamma, 0.0)


def test_scaled_rounds_and_keeps_one_channel():
    for channels, multiplier, expected in [
            (64, 1.0, 64), (64, 1 / 16, 4), (16, 1 / 32, 1), (100, 0.25, 25)]:
        assert conv_norm_act.scaled(channels, multiplier) == expected


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
