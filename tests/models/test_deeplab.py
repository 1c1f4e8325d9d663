"""DeepLab-v3 and the FCN heads on ResNet and small backbones."""

import keras
import numpy as np
import pytest

import tfcnn.layers
import tfcnn.models
from tests.models import zoo_cases

# ResNet-50's trainable weights without its 1000-way classifier.
RESNET50_FEATURES = 25_557_032 - (2048 * 1000 + 1000)


def _aspp_trainable(channels, filters=256, classes=21):
    bn = 2 * filters
    branches = (channels * filters + bn  # 1x1
                + 3 * (9 * channels * filters + bn)  # dilated 3x3
                + channels * filters + bn)  # image pooling
    projection = 5 * filters * filters + bn
    return branches + projection + filters * classes + classes


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("output_stride, rates", [(16, (6, 12, 18)),
                                                  (8, (12, 24, 36))])
def test_deeplabv3_resnet50_parameters_and_rates(output_stride, rates):
    model = zoo_cases.build_shapes_only("deeplabv3_resnet50",
                                        output_stride=output_stride)
    assert model.input_shape == (None, None, None, 3)
    assert _trainable(model) == RESNET50_FEATURES + _aspp_trainable(2048)
    assert _trainable(model) == 39_048_533
    assert [model.get_layer(f"aspp_{i}_conv").dilation_rate[0]
            for i in (1, 2, 3)] == list(rates)
    assert all(isinstance(model.get_layer(f"aspp_{i}_conv"),
                          tfcnn.layers.DilatedConv2D) for i in (1, 2, 3))
    # ASPP reads the features at the output stride: the last stages dilate.
    stage5 = model.get_layer("conv5_block1_2_conv")
    assert isinstance(stage5, tfcnn.layers.DilatedConv2D)
    assert stage5.dilation_rate[0] == 32 // output_stride


@pytest.mark.parametrize("output_stride", [8, 16])
def test_deeplabv3_scores_inputs_of_any_size(output_stride):
    model = tfcnn.models.build(
        "deeplabv3_resnet18", num_classes=3, width_multiplier=1 / 16,
        aspp_filters=4, output_stride=output_stride)
    features = model.get_layer("aspp_0_conv").input
    assert features.shape[1:] == (None, None, 32)
    rng = np.random.default_rng(0)
    for height, width in ((32, 32), (45, 71)):
        x = rng.standard_normal((2, height, width, 3)).astype("float32")
        y = keras.ops.convert_to_numpy(model(x, training=False))
        assert y.shape == (2, height, width, 3)
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)
    sub = keras.Model(model.input, features)
    assert sub(np.zeros((1, 64, 64, 3), "float32")).shape == (
        1, 64 // output_stride, 64 // output_stride, 32)


def test_deeplabv3_rejects_bad_options():
    with pytest.raises(ValueError, match="output_stride"):
        tfcnn.models.get_builder("deeplabv3_resnet18")(output_stride=32)
    with pytest.raises(ValueError, match="rates"):
        tfcnn.models.get_builder("deeplabv3_resnet18")(
            width_multiplier=1 / 16, atrous_rates=(1, 2))


def test_fcn_heads_on_resnet_and_small_backbones():
    model = tfcnn.models.build("fcn8s_resnet18", num_classes=3,
                               width_multiplier=1 / 16)
    # The skips tap the ResNet's stages 3 and 4 (strides 8 and 16).
    assert model.get_layer("score_pool3").input is model.get_layer(
        "conv3_block2_out").output
    assert model.get_layer("score_pool4").input is model.get_layer(
        "conv4_block2_out").output
    small = tfcnn.models.build("fcn8s_small", num_classes=3)
    assert small.get_layer("score_pool3").input is small.get_layer(
        "block3_2_relu").output
    assert _trainable(small) < 600_000
    for net in (model, small):
        x = np.zeros((1, 64, 96, 3), "float32")
        assert net(x).shape == (1, 64, 96, 3)
    with pytest.raises(ValueError, match="widths"):
        tfcnn.models.get_builder("fcn8s_small")(widths=(8, 8))
