"""Tests for tfcnn.layers.dilated_conv: DilatedConv2D.

Reference: an ordinary (undilated) convolution with the explicitly dilated
kernel, zeros inserted between the taps, and Yu & Koltun's output sizes.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests import layer_contract
from tfcnn.layers import DilatedConv2D
from tfcnn.layers import IdentityKernel


def dilate_kernel(kernel, rates):
    """Inserts d - 1 zero rows/columns between the taps of ``kernel``."""
    kh, kw = kernel.shape[:2]
    dh, dw = rates
    out = np.zeros((kh + (kh - 1) * (dh - 1), kw + (kw - 1) * (dw - 1))
                   + kernel.shape[2:], kernel.dtype)
    out[::dh, ::dw] = kernel
    return out


def ordinary_conv(x, kernel, padding):
    """Stride-1 undilated convolution in float64 with explicit padding.

    "same" pads ``a_eff - 1`` in total, the smaller half before (TF's and
    Keras' convention); "valid" pads nothing.
    """
    if padding == "same":
        pads = [[0, 0]] + [[(k - 1) // 2, k - 1 - (k - 1) // 2]
                           for k in kernel.shape[:2]] + [[0, 0]]
    else:
        pads = "VALID"
    return tf.nn.conv2d(tf.constant(x, tf.float64),
                        tf.constant(kernel, tf.float64), 1, pads).numpy()


@pytest.mark.parametrize("padding,expected", [
    ("same", (2, 9, 8, 4)),
    ("valid", (2, 5, 4, 4)),   # 9 - 5 + 1, 8 - 5 + 1
])
def test_layer_contract(padding, expected):
    layer_contract.assert_layer_contract(
        DilatedConv2D, {"filters": 4, "kernel_size": 3, "padding": padding},
        input_shape=(2, 9, 8, 3), expected_output_shape=expected,
        expected_num_weights=2)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_matches_convolution_with_dilated_kernel(padding):
    for kernel_size, rate in [
        (3, 1), (3, 2), (3, 3), ((2, 3), (2, 4)), (1, 5), (4, 2), (2, 1)]:
        x = layer_contract.random_input((2, 13, 12, 3))
        layer = DilatedConv2D(5, kernel_size, dilation_rate=rate,
                              padding=padding, bias_initializer="he_normal")
        y = layer(x).numpy()
        kernel, bias = (w.numpy() for w in layer.weights)
        expected = ordinary_conv(
            x, dilate_kernel(kernel, layer.dilation_rate), padding) + bias
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5,
                                   err_msg=f"{kernel_size=} {rate=}")


def test_matches_numpy_loops():
    # The definition itself: y[i, j] = sum_{u, v} k[u, v] x[i + d u, j + d v]
    x = layer_contract.random_input((1, 9, 9, 2)).astype(np.float64)
    layer = DilatedConv2D(3, 3, dilation_rate=3, padding="valid",
                          use_bias=False)
    y = layer(x.astype(np.float32)).numpy()
    kernel = layer.kernel.numpy().astype(np.float64)
    expected = np.zeros((1, 3, 3, 3))
    for i in range(3):
        for j in range(3):
            for u in range(3):
                for v in range(3):
                    expected[0, i, j] += x[0, i + 3 * u, j + 3 * v] @ \
                        kernel[u, v]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_output_size_follows_the_seed_formula():
    for size, a, d in [
        (16, 3, 1), (16, 3, 2), (17, 3, 4), (20, 5, 2), (9, 2, 8), (8, 4, 2)]:
        effective = a + (a - 1) * (d - 1)
        for padding, expected in [("same", size),
                                  ("valid", size - effective + 1)]:
            layer = DilatedConv2D(2, a, dilation_rate=d, padding=padding)
            assert layer.effective_kernel_size == (effective, effective)
            shape = layer(np.zeros((1, size, size, 1), np.float32)).shape
            assert tuple(shape) == (1, expected, expected, 2)
            assert layer.compute_output_shape((None, size, size, 1)) == (
                None, expected, expected, 2)


def test_channels_first_equals_channels_last():
    x = layer_contract.random_input((2, 7, 6, 3))
    last = DilatedConv2D(4, 3)
    y_last = last(x)
    first = DilatedConv2D(4, 3, data_format="channels_first")
    first.build((None, 3, 7, 6))
    first.set_weights(last.get_weights())
    y_first = first(np.transpose(x, (0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(np.transpose(y_first, (0, 2, 3, 1)),
                               y_last.numpy(), rtol=1e-5, atol=1e-5)


def test_gradient_is_numerically_correct():
    x = tf.constant(layer_contract.random_input((1, 6, 5, 2)), tf.float64)
    layer = DilatedConv2D(2, 2, dilation_rate=2, dtype="float64")
    layer_contract.assert_numerical_gradient(layer, [x])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    layer_contract.assert_mixed_precision(
        DilatedConv2D, {"filters": 4, "kernel_size": 3}, (2, 8, 8, 3),
        policy)


def test_identity_kernel_passes_input_through():
    for kernel_size, rate in [(3, 2), (3, 16), (2, 1), (4, 1),
                              ((1, 5), (1, 2))]:
        x = layer_contract.random_input((2, 9, 8, 4))
        layer = DilatedConv2D(4, kernel_size, dilation_rate=rate,
                              kernel_initializer="identity")
        assert isinstance(layer.kernel_initializer, IdentityKernel)
        np.testing.assert_array_equal(layer(x).numpy(), x)


def test_bad_arguments_are_rejected():
    for kwargs, match in [
        ({"dilation_rate": 0}, "Received: dilation_rate=0"),
        ({"dilation_rate": (2, 0)}, r"Received: dilation_rate=\(2, 0\)"),
        ({"strides": 2}, "Received: strides=2"),
        ({"padding": "causal"}, "Received: padding='causal'"),
    ]:
        with pytest.raises(ValueError, match=match):
            DilatedConv2D(4, 3, **kwargs)
