"""Tests for tfcnn.blocks.context: the dilated context module."""

import keras
import numpy as np
import pytest

from tfcnn.blocks.context import context_module
from tfcnn.layers import DilatedConv2D


def test_shapes_names_and_parameters():
    inputs = keras.Input((None, None, 6))
    model = keras.Model(inputs, context_module(inputs, 6, name="ctx"))
    names = [layer.name for layer in model.layers[1:]]
    assert names == [f"ctx_{i}_conv" for i in range(1, 9)]
    assert [layer.dilation_rate[0] for layer in model.layers[1:]] == [
        1, 1, 2, 4, 8, 16, 1, 1]
    assert [layer.kernel_size for layer in model.layers[1:]] == (
        [(3, 3)] * 7 + [(1, 1)])
    assert all(isinstance(layer, DilatedConv2D)
               for layer in model.layers[1:])
    assert model.output_shape == (None, None, None, 6)
    # Seven 3x3 layers and one 1x1 layer, C -> C channels, with biases.
    assert model.count_params() == 7 * (9 * 36 + 6) + (36 + 6)


def test_receptive_field_is_67_pixels():
    # Positive weights and an impulse: the response covers exactly the
    # receptive field, 1 + 2 * (1 + 1 + 2 + 4 + 8 + 16 + 1) = 67 pixels.
    x = np.zeros((1, 81, 81, 1), np.float32)
    x[0, 40, 40, 0] = 1.0
    inputs = keras.Input((81, 81, 1))
    model = keras.Model(inputs, context_module(
        inputs, 1, kernel_initializer="ones"))
    rows, cols = np.nonzero(model(x).numpy()[0, :, :, 0])
    assert rows.max() - rows.min() + 1 == 67
    assert cols.max() - cols.min() + 1 == 67


def test_identity_initialization_passes_relu_of_input():
    # The paper's initialization: the untrained module is the identity on
    # the ReLU of its input.
    x = np.random.default_rng(0).standard_normal((2, 20, 20, 4))
    x = x.astype(np.float32)
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, context_module(inputs, 4))
    np.testing.assert_array_equal(model(x).numpy(), np.maximum(x, 0.0))


@pytest.mark.parametrize("rates", [(), (1, 0), (2.0,)])
def test_bad_rates_are_rejected(rates):
    with pytest.raises(ValueError, match="Received: rates="):
        context_module(keras.Input((8, 8, 2)), 2, rates=rates)
