"""Tests for tfcnn.layers.lrn: LocalResponseNormalization.

References: NumPy float64 versions of both formulas (paper and PyTorch /
Caffe conventions), ``tf.nn.local_response_normalization``, and numerical
gradients.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import layer_contract
from tfcnn.layers import LocalResponseNormalization
from tfcnn.layers import lrn

# LRN has no weights; fitting a model made of it alone says so.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The model does not have any trainable weights")


def numpy_inter(a, size, k, alpha, beta):
    """Paper's formula, channels last: sum over |j - c| <= n/2 in range."""
    a = a.astype(np.float64)
    r = size // 2
    channels = a.shape[-1]
    out = np.empty_like(a)
    for c in range(channels):
        lo, hi = max(0, c - r), min(channels - 1, c + r)
        s = np.sum(a[..., lo:hi + 1] ** 2, axis=-1)
        out[..., c] = a[..., c] / (k + alpha * s) ** beta
    return out


def numpy_intra(a, size, k, alpha, beta):
    """The intra-channel formula: a size x size window, clipped."""
    a = a.astype(np.float64)
    r = size // 2
    _, h, w, _ = a.shape
    out = np.empty_like(a)
    for y in range(h):
        for x in range(w):
            window = a[:, max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]
            s = np.sum(window ** 2, axis=(1, 2))
            out[:, y, x] = a[:, y, x] / (k + alpha * s) ** beta
    return out


def numpy_pytorch(a, size, k, alpha, beta):
    """torch.nn.LocalResponseNorm: average over a zero-padded window."""
    a = a.astype(np.float64)
    r = size // 2
    padded = np.pad(a ** 2, [(0, 0)] * 3 + [(r, r)])
    mean = np.mean(np.stack([padded[..., i:i + a.shape[-1]]
                             for i in range(size)]), axis=0)
    return a / (k + alpha * mean) ** beta


def _input(shape, seed=0, scale=5.0):
    return layer_contract.random_input(shape, seed=seed, scale=scale)


@pytest.mark.parametrize("kwargs", [
    {"mode": "inter_channel"}, {"mode": "intra_channel"},
    {"implementation": "tf_op"}])
def test_layer_contract(kwargs):
    layer_contract.assert_layer_contract(
        LocalResponseNormalization, {"alpha": 1e-2, **kwargs},
        input_shape=(2, 5, 6, 8), expected_output_shape=(2, 5, 6, 8),
        expected_num_weights=0)


def test_defaults_are_alexnet():
    layer = LocalResponseNormalization()
    assert (layer.size, layer.bias, layer.alpha, layer.beta) == (
        5, 2.0, 1e-4, 0.75)
    assert layer.mode == "inter_channel"
    assert layer.alpha_convention == "sum"


def test_inter_channel_matches_numpy_float64():
    for size, beta, channels in [
        (5, 0.75, 16),    # AlexNet; banded matrix path
        (3, 0.5, 7),
        (7, 1.0, 12),
        (1, 0.6, 5),      # window of one channel; general power
        (5, 0.75, 200),   # above the banded threshold: shifted slices
    ]:
        x = _input((2, 4, 3, channels))
        layer = LocalResponseNormalization(size=size, bias=1.5, alpha=1e-2,
                                           beta=beta)
        np.testing.assert_allclose(
            layer(x).numpy(), numpy_inter(x, size, 1.5, 1e-2, beta),
            rtol=1e-5, err_msg=f"{size=} {beta=} {channels=}")


@pytest.mark.parametrize("channels", [96, 256])
@pytest.mark.parametrize("beta", [0.75, 0.6])
def test_inter_channel_matches_tf_op(channels, beta):
    x = _input((2, 6, 5, channels), scale=20.0)
    layer = LocalResponseNormalization(alpha=1e-3, beta=beta)
    expected = tf.nn.local_response_normalization(
        x, depth_radius=2, bias=2.0, alpha=1e-3, beta=beta)
    np.testing.assert_allclose(layer(x).numpy(), expected.numpy(),
                               rtol=1e-5)


@pytest.mark.parametrize("channels", [96, 256])
def test_inter_channel_gradient_matches_tf_op(channels):
    x = tf.constant(_input((2, 5, 4, channels), scale=20.0))
    upstream = tf.constant(_input((2, 5, 4, channels), seed=1, scale=1.0))
    layer = LocalResponseNormalization(alpha=1e-3)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = layer(x)
        theirs = tf.nn.local_response_normalization(x, 2, 2.0, 1e-3, 0.75)
    got = tape.gradient(ours, x, output_gradients=upstream)
    expected = tape.gradient(theirs, x, output_gradients=upstream)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5,
                               atol=1e-5 * np.abs(expected.numpy()).max())


@pytest.mark.parametrize("size", [3, 5])
def test_intra_channel_matches_numpy_float64(size):
    x = _input((2, 6, 5, 3))
    layer = LocalResponseNormalization(size=size, bias=1.0, alpha=1e-2,
                                       mode="intra_channel")
    np.testing.assert_allclose(
        layer(x).numpy(), numpy_intra(x, size, 1.0, 1e-2, 0.75), rtol=1e-5)


def test_mean_convention_matches_pytorch_formula():
    x = _input((2, 3, 3, 10))
    layer = LocalResponseNormalization(size=5, bias=1.0, alpha=0.05,
                                       alpha_convention="mean")
    np.testing.assert_allclose(
        layer(x).numpy(), numpy_pytorch(x, 5, 1.0, 0.05, 0.75), rtol=1e-5)


def test_mean_convention_within_channel_divides_by_window_area():
    # Caffe's WITHIN_CHANNEL: alpha times the mean over size x size pixels
    # (with k = 1).
    x = _input((1, 5, 5, 2))
    layer = LocalResponseNormalization(size=3, bias=1.0, alpha=0.09,
                                       mode="intra_channel",
                                       alpha_convention="mean")
    np.testing.assert_allclose(
        layer(x).numpy(), numpy_intra(x, 3, 1.0, 0.01, 0.75), rtol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_tf_op_implementation_matches_custom(data_format):
    x = _input((2, 5, 4, 12), scale=20.0)
    if data_format == "channels_first":
        x = np.transpose(x, (0, 3, 1, 2))
    layers = [LocalResponseNormalization(alpha=1e-3, data_format=data_format,
                                         implementation=implementation)
              for implementation in ("custom", "tf_op")]
    xt = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        outputs = [layer(xt) for layer in layers]
    np.testing.assert_allclose(outputs[1].numpy(), outputs[0].numpy(),
                               rtol=1e-5)
    grads = [tape.gradient(y, xt).numpy() for y in outputs]
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5,
                               atol=1e-5 * np.abs(grads[0]).max())


@pytest.mark.parametrize("mode", ["inter_channel", "intra_channel"])
def test_channels_first_equals_channels_last(mode):
    x = _input((2, 4, 5, 6))
    last = LocalResponseNormalization(mode=mode, alpha=1e-2)(x)
    first = LocalResponseNormalization(
        mode=mode, alpha=1e-2, data_format="channels_first")(
            np.transpose(x, (0, 3, 1, 2)))
    np.testing.assert_allclose(np.transpose(first.numpy(), (0, 2, 3, 1)),
                               last.numpy(), rtol=1e-6)


@pytest.mark.parametrize("mode,data_format", [
    ("inter_channel", "channels_last"),   # banded matrix gradient
    ("inter_channel", "channels_first"),  # shifted-slice gradient
    ("intra_channel", "channels_last"),
])
def test_gradient_is_numerically_correct(mode, data_format):
    x = tf.constant(_input((1, 3, 4, 6), scale=3.0), tf.float64)
    layer = LocalResponseNormalization(mode=mode, alpha=0.05, beta=0.75,
                                       data_format=data_format,
                                       dtype="float64")
    layer_contract.assert_numerical_gradient(layer, [x])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("kwargs", [
    {"mode": "inter_channel"}, {"mode": "intra_channel"},
    {"implementation": "tf_op"}])
def test_mixed_precision_does_not_overflow(policy, kwargs):
    # 300 ** 2 * 5 is far above float16's maximum (65504): the sum of
    # squares must be taken in float32.
    layer_contract.assert_mixed_precision(
        LocalResponseNormalization, kwargs, (2, 4, 4, 8), policy,
        input_scale=300.0)


def test_inter_channel_lrn_along_axis_matches_last_axis():
    x = _input((2, 5, 3, 4))
    along_1 = lrn.inter_channel_lrn(tf.constant(x), 1, 1.0, 0.1, 0.75,
                                    axis=1)
    moved = lrn.inter_channel_lrn(tf.constant(np.moveaxis(x, 1, -1)), 1,
                                  1.0, 0.1, 0.75)
    np.testing.assert_allclose(along_1.numpy(),
                               np.moveaxis(moved.numpy(), -1, 1), rtol=1e-6)


def test_bad_arguments_are_rejected():
    for kwargs, match in [
        ({"size": 4}, "Received: size=4"),
        ({"size": 0}, "Received: size=0"),
        ({"mode": "across"}, "Received: mode='across'"),
        ({"alpha_convention": "caffe"}, "Received: alpha_convention='caffe'"),
        ({"beta": -1.0}, "Received: beta=-1.0"),
        ({"bias": 0.0}, "Received: bias=0.0"),
        ({"alpha": -1e-4}, "Received: alpha=-0.0001"),
        ({"data_format": "NHWC"}, "Received: data_format='nhwc'"),
        ({"implementation": "cudnn"}, "Received: implementation='cudnn'"),
        ({"implementation": "tf_op", "mode": "intra_channel"},
         "Received: implementation='tf_op'"),
    ]:
        with pytest.raises(ValueError, match=match):
            LocalResponseNormalization(**kwargs)


def test_input_must_be_4d():
    with pytest.raises(ValueError, match="expected ndim=4"):
        LocalResponseNormalization()(np.ones((2, 3, 4), np.float32))


def test_channel_dimension_must_be_defined():
    with pytest.raises(ValueError, match="defined channel dimension"):
        LocalResponseNormalization()(keras.Input((4, 4, None)))
