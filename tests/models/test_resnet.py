"""ResNet: reference parameter counts, shortcut options A/B/C, BN and GN."""

import keras
import numpy as np
import pytest

import tfcnn.layers
import tfcnn.models
from tests.models import zoo_cases
from tfcnn.layers import ZeroPadShortcut

# Trainable parameters at 224x224 and 1,000 classes, as torchvision's
# ResNets (no convolution biases; batch norm scale and offset).
REFERENCE_TRAINABLE = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
}
# keras.applications' ResNet-50/101 (v1) count the same weights plus a
# bias in every convolution.
KERAS_APPLICATIONS = {"resnet50": 25_636_712, "resnet101": 44_707_176}
TINY = dict(input_shape=(32, 32, 3), width_multiplier=1 / 16, num_classes=4)


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def _norm_channels(model, layer_type):
    return sum(layer.gamma.shape[0] for layer in model.layers
               if isinstance(layer, layer_type))


@pytest.mark.parametrize("name", sorted(REFERENCE_TRAINABLE))
def test_trainable_parameters_match_the_reference(name):
    model = zoo_cases.build_shapes_only(name)
    assert _count(model.trainable_weights) == REFERENCE_TRAINABLE[name]
    # Batch norm keeps a moving mean and variance per channel besides.
    moving = 2 * _norm_channels(model, keras.layers.BatchNormalization)
    assert _count(model.non_trainable_weights) == moving
    assert model.get_layer("conv5_block1_out").output.shape[1:3] == (7, 7)
    if name in KERAS_APPLICATIONS:
        biases = sum(layer.filters for layer in model.layers
                     if isinstance(layer, keras.layers.Conv2D))
        assert model.count_params() + biases == KERAS_APPLICATIONS[name]


def test_resnet50_gn_has_the_same_weights_and_no_moving_statistics():
    model = zoo_cases.build_shapes_only("resnet50_gn")
    assert model.count_params() == REFERENCE_TRAINABLE["resnet50"]
    assert not model.non_trainable_weights
    norms = [layer for layer in model.layers
             if isinstance(layer, tfcnn.layers.GroupNormalization)]
    assert len(norms) == 53  # stem + 16 blocks x 3 + 4 projections
    assert {layer.groups for layer in norms} == {32}
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in model.layers)


def _projections(model):
    return [layer.name for layer in model.layers
            if layer.name.endswith("_0_conv")]


@pytest.mark.parametrize("depth, blocks, changes", [(18, 8, 3), (50, 16, 4)])
def test_shortcut_options(depth, blocks, changes):
    models = {option: zoo_cases.build_shapes_only(
        f"resnet{depth}", shortcut=option, **TINY)
              for option in "ABC"}
    assert len(_projections(models["A"])) == 0
    assert len(_projections(models["B"])) == changes
    assert len(_projections(models["C"])) == blocks
    pads = [layer for layer in models["A"].layers
            if isinstance(layer, ZeroPadShortcut)]
    assert len(pads) == changes
    # Option A adds no parameters; every projection adds a 1x1 kernel and
    # a normalization.
    projection_weights = {
        option: sum(_count(model.get_layer(name).weights)
                    + _count(model.get_layer(name[:-4] + "bn").weights)
                    for name in _projections(model))
        for option, model in models.items()}
    base = models["A"].count_params()
    assert models["B"].count_params() == base + projection_weights["B"]
    assert models["C"].count_params() == base + projection_weights["C"]


@pytest.mark.parametrize("output_stride, rates", [
    (16, {"conv5": 2}), (8, {"conv4": 2, "conv5": 4})])
def test_output_stride_dilates_the_last_stages(output_stride, rates):
    model = tfcnn.models.build("resnet18", include_top=False,
                               output_stride=output_stride, **TINY)
    assert model.output_shape[1:3] == (32 // output_stride,) * 2
    dilated = {layer.name: layer.dilation_rate[0] for layer in model.layers
               if isinstance(layer, tfcnn.layers.DilatedConv2D)}
    for stage, rate in rates.items():
        convs = [n for n in dilated if n.startswith(stage)]
        assert convs and {dilated[n] for n in convs} == {rate}
    assert set(n[:5] for n in dilated) == set(rates)


@pytest.mark.parametrize("stride_on_3x3, strided", [
    (False, "conv3_block1_1_conv"), (True, "conv3_block1_2_conv")])
def test_bottleneck_stride_placement(stride_on_3x3, strided):
    model = tfcnn.models.build("resnet50", stride_on_3x3=stride_on_3x3,
                               **TINY)
    strides = {layer.name: layer.strides[0] for layer in model.layers
               if layer.name.startswith("conv3_block1_")
               and isinstance(layer, keras.layers.Conv2D)}
    assert {name for name, s in strides.items() if s == 2} == {
        strided, "conv3_block1_0_conv"}


def test_zero_init_residual_starts_blocks_as_identity():
    model = tfcnn.models.build("resnet18", zero_init_residual=True, **TINY)
    gamma = model.get_layer("conv2_block1_2_bn").gamma
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(gamma), 0.0)
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3))
    block_in = keras.Model(model.input, [
        model.get_layer("pool1").output,
        model.get_layer("conv2_block1_out").output])
    before, after = block_in(x.astype("float32"), training=False)
    np.testing.assert_allclose(after, keras.ops.relu(before), atol=1e-6)


def test_group_norm_groups_must_divide_the_width():
    with pytest.raises(ValueError, match="Received: norm_groups=3"):
        tfcnn.models.build("resnet50_gn", norm_groups=3, **TINY)


def test_stochastic_depth_decays_linearly_and_is_off_in_inference():
    model = tfcnn.models.build("resnet18", input_shape=(32, 32, 3),
                               num_classes=3, width_multiplier=1 / 16,
                               stochastic_depth=0.4)
    drops = [layer for layer in model.layers
             if isinstance(layer, tfcnn.layers.StochasticDepth)]
    # Eight blocks: block l drops with 0.4 * l / 8.
    assert [layer.name for layer in drops][0] == "conv2_block1_add"
    np.testing.assert_allclose([layer.rate for layer in drops],
                               [0.4 * block / 8 for block in range(1, 9)])
    plain = tfcnn.models.build("resnet18", input_shape=(32, 32, 3),
                               num_classes=3, width_multiplier=1 / 16)
    plain.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3))
    np.testing.assert_allclose(np.array(model(x, training=False)),
                               np.array(plain(x, training=False)),
                               rtol=1e-5, atol=1e-6)
    # In training, the dropped branches change the output.
    assert not np.allclose(np.array(model(x, training=True)),
                           np.array(plain(x, training=True)), atol=1e-4)
