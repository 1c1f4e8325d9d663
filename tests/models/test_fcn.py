"""FCN-32s/16s/8s: per-pixel scores at the input size, skips, upsampling."""

import keras
import numpy as np
import pytest

import tfcnn.layers
import tfcnn.models
from tests.models import zoo_cases

TINY = dict(width_multiplier=1 / 16, fc_units=16, num_classes=3)
VGG16_CONV = 14_714_688  # VGG-16's 13 convolutions, weights and biases


def _expected_count(stride, classes=21):
    fc6 = 7 * 7 * 512 * 4096 + 4096
    fc7 = 4096 * 4096 + 4096
    score_fr = 4096 * classes + classes
    upscore = (2 * stride) ** 2 * classes ** 2
    total = VGG16_CONV + fc6 + fc7 + score_fr + upscore
    if stride <= 16:  # upscore2 + score_pool4
        total += 4 * 4 * classes ** 2 + 512 * classes + classes
    if stride <= 8:  # upscore_pool4 + score_pool3
        total += 4 * 4 * classes ** 2 + 256 * classes + classes
    return total


@pytest.mark.parametrize("name, stride", [("fcn32s", 32), ("fcn16s", 16),
                                          ("fcn8s", 8)])
def test_scores_every_pixel_at_several_input_sizes(name, stride):
    model = tfcnn.models.build(name, **TINY)
    assert model.input_shape == (None, None, None, 3)
    rng = np.random.default_rng(0)
    for height, width in ((32, 32), (64, 96), (96, 64)):
        x = rng.standard_normal((2, height, width, 3)).astype("float32")
        y = keras.ops.convert_to_numpy(model(x))
        assert y.shape == (2, height, width, 3)
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)
    final = model.get_layer(f"upscore{stride}")
    assert isinstance(final, tfcnn.layers.TransposedConv2D)
    assert final.strides == (stride, stride)
    assert final.kernel_size == (2 * stride, 2 * stride)
    assert not final.trainable


def test_fcn8s_parameter_count_and_skips():
    model = zoo_cases.build_shapes_only("fcn8s")
    assert model.count_params() == _expected_count(8) == 134_489_759
    # The skips tap VGG-16's pool4 and pool3, not a copy of the backbone.
    assert model.get_layer("score_pool4").input is model.get_layer(
        "block4_pool").output
    assert model.get_layer("score_pool3").input is model.get_layer(
        "block3_pool").output
    assert model.get_layer("fc6_conv").kernel.shape == (7, 7, 512, 4096)
    assert model.get_layer("fc7_conv").kernel.shape == (1, 1, 4096, 4096)


@pytest.mark.parametrize("name, stride", [("fcn32s", 32), ("fcn16s", 16)])
def test_coarser_fcns_have_the_expected_layers(name, stride):
    model = zoo_cases.build_shapes_only(name, **dict(TINY, num_classes=21))
    names = {layer.name for layer in model.layers}
    assert ("score_pool4" in names) == (stride == 16)
    assert "score_pool3" not in names
    upsampling = [layer for layer in model.layers
                  if isinstance(layer, tfcnn.layers.TransposedConv2D)]
    assert sum(int(np.prod(layer.kernel.shape)) for layer in upsampling) == (
        (2 * stride) ** 2 * 21 ** 2 + (stride == 16) * 4 * 4 * 21 ** 2)


def test_upsampling_starts_bilinear_and_skip_scores_at_zero():
    model = tfcnn.models.build("fcn16s", **TINY)
    kernel = keras.ops.convert_to_numpy(model.get_layer("upscore2").kernel)
    taps = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(kernel[:, :, 0, 0], np.outer(taps, taps))
    np.testing.assert_allclose(kernel[:, :, 0, 1], 0.0)
    assert model.get_layer("upscore2").trainable
    for layer in ("score_fr", "score_pool4"):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(model.get_layer(layer).kernel), 0.0)
    # Zero scores give uniform per-pixel probabilities at the start.
    y = model(np.ones((1, 64, 64, 3), "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), 1 / 3,
                               atol=1e-6)


def test_learned_final_upsampling_is_trainable():
    model = tfcnn.models.build("fcn32s", learn_final_upsampling=True, **TINY)
    assert model.get_layer("upscore32").trainable


def test_headless_fcn_returns_fc7_features():
    model = tfcnn.models.build("fcn8s", include_top=False,
                               input_shape=(64, 64, 3), **TINY)
    assert model.output_shape == (None, 2, 2, 16)
