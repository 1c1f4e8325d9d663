"""Tests for tfcnn.layers.transposed_conv: TransposedConv2D, bilinear init.

References: multiplication by the transpose of the explicit convolution
matrix W_S built from the kernel (Dumoulin & Visin, 2016),
``keras.layers.Conv2DTranspose``, the guide's output size, and
``tf.image.resize`` for the bilinear kernel.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import layer_contract
from tfcnn.layers import TransposedConv2D


def conv_matrix(kernel, in_size, strides, pads):
    """W_S of the convolution that the transposed layer transposes.

    The convolution maps an ``in_size`` image with ``kernel.shape[2]``
    channels to an ``out_size`` image with ``kernel.shape[3]`` channels:
    ``Y[oy, ox, c] = sum K[u, v, f, c] X[oy s + u - p, ox s + v - p, f]``,
    zeros outside the image. Rows are the serialized output (oy, ox, c),
    columns the serialized input (y, x, f).
    """
    kh, kw, filters, channels = kernel.shape
    (sh, sw), (ph, pw) = strides, pads
    rows_in, cols_in = in_size
    rows_out = (rows_in + 2 * ph - kh) // sh + 1
    cols_out = (cols_in + 2 * pw - kw) // sw + 1
    w = np.zeros((rows_out, cols_out, channels, rows_in, cols_in, filters))
    for oy in range(rows_out):
        for ox in range(cols_out):
            for u in range(kh):
                for v in range(kw):
                    y, x = oy * sh + u - ph, ox * sw + v - pw
                    if 0 <= y < rows_in and 0 <= x < cols_in:
                        w[oy, ox, :, y, x, :] = kernel[u, v].T
    return w.reshape(rows_out * cols_out * channels, -1), (rows_out,
                                                          cols_out)


@pytest.mark.parametrize("kwargs,expected", [
    ({"padding": "same"}, (2, 10, 8, 4)),
    ({"padding": "valid"}, (2, 12, 10, 4)),            # (o-1)2 + 4
    ({"padding": 1, "output_padding": 1}, (2, 11, 9, 4)),
    ({"padding": "same", "kernel_initializer": "bilinear"}, (2, 10, 8, 4)),
])
def test_layer_contract(kwargs, expected):
    layer_contract.assert_layer_contract(
        TransposedConv2D,
        {"filters": 4, "kernel_size": 4, "strides": 2, **kwargs},
        input_shape=(2, 5, 4, 3), expected_output_shape=expected,
        expected_num_weights=2)


def test_is_multiplication_by_transposed_conv_matrix():
    for size, kernel_size, strides, padding, output_padding in [
        (4, 3, 1, "valid", None),
        (3, 3, 2, "valid", None),
        (3, 3, 2, 1, 1),
        (4, 4, 2, "same", None),    # "same", a - s even: p = (a - s) / 2
        (3, (3, 2), (2, 1), (1, 0), (1, 0)),
        (3, 5, 3, 2, 2),
        (2, 2, 2, 0, 1),
    ]:
        channels, filters = 2, 3
        x = layer_contract.random_input((1, size, size, channels))
        layer = TransposedConv2D(filters, kernel_size, strides=strides,
                                 padding=padding,
                                 output_padding=output_padding,
                                 use_bias=False)
        y = layer(x).numpy()
        kernel = layer.kernel.numpy().astype(np.float64)
        kh, kw = layer.kernel_size
        sh, sw = layer.strides
        if padding == "same":
            pads = ((kh - sh) // 2, (kw - sw) // 2)
        elif padding == "valid":
            pads = (0, 0)
        else:
            pads = layer.explicit_padding
        out_pad = layer.output_padding or (0, 0)
        # Dumoulin & Visin (2016): r = (o - 1) s + a - 2 p + output_padding.
        out_size = tuple((size - 1) * s + a - 2 * p + op for s, a, p, op in
                         zip((sh, sw), (kh, kw), pads, out_pad))
        assert y.shape == (1,) + out_size + (filters,)
        w_s, forward_size = conv_matrix(kernel, out_size, (sh, sw), pads)
        assert forward_size == (size, size)
        expected = (w_s.T @ x.astype(np.float64).ravel()).reshape(y.shape)
        np.testing.assert_allclose(
            y, expected, rtol=1e-5, atol=1e-6,
            err_msg=f"{kernel_size=} {strides=} {padding=} {output_padding=}")


def test_matches_keras_conv2d_transpose():
    for kernel_size, strides, padding, output_padding in [
        (3, 2, "same", None), (3, 2, "same", 1), (4, 2, "same", None),
        (3, 2, "valid", 1), (5, 3, "valid", None),
        ((2, 3), (1, 2), "same", None)]:
        x = layer_contract.random_input((2, 5, 6, 3))
        kwargs = dict(filters=4, kernel_size=kernel_size, strides=strides,
                      padding=padding, output_padding=output_padding,
                      bias_initializer="he_normal")
        ours = TransposedConv2D(**kwargs)
        y = ours(x)
        reference = keras.layers.Conv2DTranspose(**kwargs)
        reference.build(x.shape)
        reference.set_weights(ours.get_weights())
        np.testing.assert_allclose(y.numpy(), reference(x).numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=str(kwargs))


def test_output_size_follows_the_seed_formula():
    for o, a, s, p, op in [
        (7, 3, 1, 0, 0), (7, 3, 2, 1, 1), (5, 4, 2, 1, 0), (6, 5, 3, 2, 2),
        (1, 3, 2, 0, 1), (8, 16, 8, 4, 0)]:
        layer = TransposedConv2D(2, a, strides=s, padding=p, output_padding=op)
        expected = (o - 1) * s + a - 2 * p + op
        y = layer(np.zeros((1, o, o, 1), np.float32))
        assert tuple(y.shape) == (1, expected, expected, 2)
        assert layer.compute_output_shape((None, o, o, 1)) == (
            None, expected, expected, 2)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bilinear_initializer_upsamples_bilinearly(factor):
    x = layer_contract.random_input((2, 6, 7, 3))
    layer = TransposedConv2D(3, 2 * factor - factor % 2, strides=factor,
                             padding="same", kernel_initializer="bilinear")
    y = layer(x).numpy()
    expected = tf.image.resize(x, (6 * factor, 7 * factor),
                               "bilinear").numpy()
    assert y.shape == expected.shape
    # Away from the border (where resize repeats the edge pixel and the
    # transposed convolution sees zeros) the two are the same.
    inner = (slice(None), slice(factor, -factor), slice(factor, -factor))
    np.testing.assert_allclose(y[inner], expected[inner], rtol=1e-5,
                               atol=1e-5)


def test_channels_first_equals_channels_last():
    x = layer_contract.random_input((2, 5, 4, 3))
    for padding in ["same", 1]:
        last = TransposedConv2D(4, 3, strides=2, padding=padding,
                                output_padding=1)
        y_last = last(x).numpy()
        first = TransposedConv2D(4, 3, strides=2, padding=padding,
                                 output_padding=1,
                                 data_format="channels_first")
        first.build((None, 3, 5, 4))
        first.set_weights(last.get_weights())
        y_first = first(np.transpose(x, (0, 3, 1, 2))).numpy()
        np.testing.assert_allclose(np.transpose(y_first, (0, 2, 3, 1)),
                                   y_last, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding", ["same", 1])
def test_gradient_is_numerically_correct(padding):
    x = tf.constant(layer_contract.random_input((1, 3, 4, 2)), tf.float64)
    layer = TransposedConv2D(2, 3, strides=2, padding=padding,
                             output_padding=1, dtype="float64")
    layer_contract.assert_numerical_gradient(layer, [x])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    layer_contract.assert_mixed_precision(
        TransposedConv2D,
        {"filters": 3, "kernel_size": 4, "strides": 2, "padding": 1},
        (2, 5, 5, 3), policy)


def test_bad_arguments_are_rejected():
    for kwargs, match in [
        ({"padding": -1}, "Received: padding=-1"),
        ({"padding": (1, 2, 3)}, r"Received: padding=\(1, 2, 3\)"),
        ({"strides": 2, "output_padding": 2}, "strictly less"),
        ({"padding": "full"}, "full"),
    ]:
        with pytest.raises(ValueError, match=match):
            TransposedConv2D(4, 3, **kwargs)


def test_padding_that_removes_the_output_is_rejected():
    # (1 - 1) * 1 + 3 - 2 * 2 = -1 rows.
    with pytest.raises(ValueError, match=r"Received: padding=\(2, 2\)"):
        TransposedConv2D(2, 3, padding=2)(np.ones((1, 1, 1, 1), np.float32))
