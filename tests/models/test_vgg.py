"""VGG: the paper's parameter counts, cs231n's per-layer table, dilation."""

import keras
import numpy as np

import tfcnn.layers
import tfcnn.models
from tests.models import zoo_cases
from tfcnn.models import vgg

# The cs231n notes, VGG-16 at 224x224: weights of each 3x3 convolution
# (biases not counted) and of the three fully connected layers.
CS231N_CONV_WEIGHTS = [
    1_728, 36_864,
    73_728, 147_456,
    294_912, 589_824, 589_824,
    1_179_648, 2_359_296, 2_359_296,
    2_359_296, 2_359_296, 2_359_296,
]
CS231N_FC_WEIGHTS = [102_760_448, 16_777_216, 4_096_000]


def _kernels(model, layer_type):
    return [int(np.prod(layer.kernel.shape)) for layer in model.layers
            if isinstance(layer, layer_type)]


def test_vgg16_matches_the_paper_and_the_seed_table():
    model = zoo_cases.build_shapes_only("vgg16")
    assert model.count_params() == 138_357_544
    assert _kernels(model, keras.layers.Conv2D) == CS231N_CONV_WEIGHTS
    assert _kernels(model, keras.layers.Dense) == CS231N_FC_WEIGHTS
    assert model.get_layer("block5_pool").output.shape[1:] == (7, 7, 512)
    assert model.get_layer("fc1_dropout").rate == 0.5


def test_vgg19_matches_the_paper():
    model = zoo_cases.build_shapes_only("vgg19")
    assert model.count_params() == 143_667_240
    assert len(_kernels(model, keras.layers.Conv2D)) == 16


def test_configurations_have_the_papers_depth():
    for depth in (11, 13, 16, 19):
        model = zoo_cases.build_shapes_only(
            f"vgg{depth}", input_shape=(32, 32, 3), width_multiplier=1 / 16,
            fc_units=8, num_classes=2)
        # depth = weight layers = convolutions + 3 fully connected.
        assert len(_kernels(model, keras.layers.Conv2D)) == depth - 3
        assert len(_kernels(model, keras.layers.Dense)) == 3


def test_batch_norm_variant_normalizes_every_convolution():
    model = tfcnn.models.build("vgg16", input_shape=(32, 32, 3),
                               width_multiplier=1 / 16, fc_units=8,
                               norm="batch")
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 13
    assert not model.get_layer("block1_conv1_conv").use_bias


def test_headless_backbone_pools_or_keeps_the_map():
    kwargs = dict(input_shape=(64, 64, 3), width_multiplier=1 / 16,
                  include_top=False)
    assert tfcnn.models.build("vgg16", **kwargs).output_shape == (
        None, 2, 2, 32)
    assert tfcnn.models.build("vgg16", pooling="avg", **kwargs
                              ).output_shape == (None, 32)


def test_features_are_keyed_by_stride_and_dilated_below_stride_32():
    inputs = keras.Input((64, 64, 3))
    plain = vgg.vgg_features(inputs, 16, width_multiplier=1 / 16)
    assert {s: t.shape[1] for s, t in plain.items()} == {
        2: 32, 4: 16, 8: 8, 16: 4, 32: 2}
    keras.backend.clear_session()
    inputs = keras.Input((64, 64, 3))
    dilated = vgg.vgg_features(inputs, 16, width_multiplier=1 / 16,
                               output_stride=8)
    assert sorted(dilated) == [2, 4, 8]
    assert dilated[8].shape[1:3] == (8, 8)
    model = keras.Model(inputs, dilated[8])
    names = [layer.name for layer in model.layers]
    assert "block4_pool" not in names and "block5_pool" not in names
    rates = {layer.name: layer.dilation_rate[0] for layer in model.layers
             if isinstance(layer, tfcnn.layers.DilatedConv2D)}
    assert rates == {f"block5_conv{i}_conv": 2 for i in (1, 2, 3)}
