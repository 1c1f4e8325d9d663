"""AlexNet: exact parameter counts of both forms, the paper's layers."""

import keras
import numpy as np
import pytest

import tfcnn.layers
import tfcnn.models
from tests.models import zoo_cases
from tfcnn.models import alexnet

TINY = dict(input_shape=(67, 67, 3), width_multiplier=1 / 16, fc_units=16,
            num_classes=4)


def _paper_count(towers):
    """Weights + biases of the paper's layers, from their shapes."""
    split = towers  # grouped layers see 1/towers of their input maps
    convs = [(11 * 11 * 3, 96), (5 * 5 * 96 // split, 256),
             (3 * 3 * 256, 384), (3 * 3 * 384 // split, 384),
             (3 * 3 * 384 // split, 256)]
    dense = [(6 * 6 * 256, 4096), (4096, 4096), (4096, 1000)]
    return sum(fan_in * units + units for fan_in, units in convs + dense)


@pytest.mark.parametrize("name, towers, count", [
    ("alexnet", 2, 60_965_224), ("alexnet_one_tower", 1, 62_378_344)])
def test_parameter_count_is_the_papers(name, towers, count):
    assert _paper_count(towers) == count
    model = zoo_cases.build_shapes_only(name)
    assert model.count_params() == count
    # The 227 convention: 224 is padded so conv1 gives 55x55 maps.
    assert model.get_layer("conv1_pad").output.shape[1:3] == (227, 227)
    assert model.get_layer("conv1_conv").output.shape[1:] == (55, 55, 96)
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)
    groups = {i: model.get_layer(f"conv{i}_conv").groups for i in range(1, 6)}
    assert groups == {1: 1, 2: towers, 3: 1, 4: towers, 5: towers}


def test_paper_layers():
    model = tfcnn.models.build("alexnet", **TINY)
    names = [layer.name for layer in model.layers]
    # LRN after the ReLU of conv1 and conv2, before their pooling.
    for index in (1, 2):
        lrn = model.get_layer(f"conv{index}_lrn")
        assert isinstance(lrn, tfcnn.layers.LocalResponseNormalization)
        assert (names.index(f"conv{index}_relu") < names.index(lrn.name)
                < names.index(f"pool{index}"))
    assert sum(isinstance(layer, tfcnn.layers.LocalResponseNormalization)
               for layer in model.layers) == 2
    # Overlapping pooling: 3x3 windows at stride 2.
    for index in (1, 2, 5):
        pool = model.get_layer(f"pool{index}")
        assert (pool.pool_size, pool.strides) == ((3, 3), (2, 2))
    assert [model.get_layer(f"fc{i}_dropout").rate for i in (1, 2)] == [
        0.5, 0.5]
    assert sum(isinstance(layer, keras.layers.Conv2D)
               for layer in model.layers) == 5
    assert sum(isinstance(layer, keras.layers.Dense)
               for layer in model.layers) == 3


def test_conv1_padding_reaches_the_next_4k_plus_11():
    for size, pad in [(224, 3), (227, 0), (67, 0), (70, 1), (None, 0)]:
        assert alexnet.conv1_padding(size) == pad
        assert size is None or (size + pad - 11) % 4 == 0


def test_227_input_is_not_padded():
    model = tfcnn.models.build("alexnet", **dict(TINY, input_shape=(227, 227,
                                                                   3)))
    assert "conv1_pad" not in [layer.name for layer in model.layers]
    assert model.get_layer("conv1_conv").output.shape[1:3] == (55, 55)


def test_paper_initialization():
    model = tfcnn.models.build("alexnet", paper_init=True, **TINY)
    biases = {name: float(np.mean(keras.ops.convert_to_numpy(
        model.get_layer(name).bias)))
        for name in ("conv1_conv", "conv2_conv", "conv3_conv", "conv4_conv",
                     "conv5_conv", "fc1", "fc2", "logits")}
    assert biases == {"conv1_conv": 0.0, "conv2_conv": 1.0,
                      "conv3_conv": 0.0, "conv4_conv": 1.0,
                      "conv5_conv": 1.0, "fc1": 1.0, "fc2": 1.0,
                      "logits": 0.0}
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv1_conv").kernel)
    assert abs(float(np.std(kernel)) - 0.01) < 0.002
