"""The dilated network (Dilation8): stride 8 front end, context module."""

import keras
import numpy as np
import pytest

import tfcnn.layers
import tfcnn.models

TINY = dict(width_multiplier=1 / 16, fc_units=16, num_classes=3)


def _rates(model):
    return {layer.name: layer.dilation_rate[0] for layer in model.layers
            if isinstance(layer, tfcnn.layers.DilatedConv2D)}


def test_front_end_and_context_dilation_rates():
    model = tfcnn.models.build("dilation8", **TINY)
    rates = _rates(model)
    assert {n: r for n, r in rates.items() if n.startswith("block")} == {
        "block5_conv1_conv": 2, "block5_conv2_conv": 2,
        "block5_conv3_conv": 2}
    assert rates["fc6_conv"] == 4
    context = [rates[f"context_{i}_conv"] for i in range(1, 8)]
    assert context == [1, 1, 2, 4, 8, 16, 1]
    names = {layer.name for layer in model.layers}
    assert not {"block4_pool", "block5_pool"} & names
    assert isinstance(model.get_layer("context_8_conv"), keras.layers.Conv2D)


@pytest.mark.parametrize("height, width", [(32, 32), (64, 40), (48, 96)])
def test_scores_every_pixel(height, width):
    model = tfcnn.models.build("dilation8", **TINY)
    x = np.random.default_rng(0).standard_normal((2, height, width, 3))
    y = keras.ops.convert_to_numpy(model(x.astype("float32")))
    assert y.shape == (2, height, width, 3)
    assert model.get_layer("score").output.shape[1:3] == (None, None)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


def test_features_keep_stride_8():
    model = tfcnn.models.build("dilation8", input_shape=(64, 64, 3),
                               **TINY)
    assert model.get_layer("fc7_conv").output.shape[1:3] == (8, 8)
    assert model.get_layer("context_8_conv").output.shape[1:] == (8, 8, 3)


def test_front_end_alone_and_its_parameter_count():
    classes = 21
    front = tfcnn.models.build("dilation8", context=False,
                               **dict(TINY, num_classes=classes))
    full = tfcnn.models.build("dilation8", **dict(TINY, num_classes=classes))
    context = 7 * (3 * 3 * classes * classes + classes) + (
        classes * classes + classes)
    assert full.count_params() - front.count_params() == context
    assert not any(layer.name.startswith("context")
                   for layer in front.layers)
