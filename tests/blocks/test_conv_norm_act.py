"""Tests for tfcnn.blocks.conv_norm_act: convolution, norm, activation."""

import keras
import numpy as np
import pytest

import tfcnn.layers
from tfcnn.blocks import conv_norm_act


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
