"""Tests for tfcnn.layers.group_norm: GroupNormalization.

References: a NumPy float64 transcription of Wu & He's reference code,
``keras.layers.GroupNormalization``, the layer- and instance-norm
identities, and numerical gradients.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import layer_contract
from tfcnn.layers import GroupNormalization
from tfcnn.layers import group_norm

# center=False, scale=False leaves no weights; fitting that model says so.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The model does not have any trainable weights")


def numpy_group_norm(x, gamma, beta, groups, eps):
    """Wu & He (2018), figure 3, in NumPy float64 (channels last)."""
    x = x.astype(np.float64)
    n, h, w, c = x.shape
    xg = x.reshape(n, h, w, groups, c // groups)
    mean = xg.mean(axis=(1, 2, 4), keepdims=True)
    var = xg.var(axis=(1, 2, 4), keepdims=True)
    xg = (xg - mean) / np.sqrt(var + eps)
    return xg.reshape(n, h, w, c) * gamma + beta


def _params(channels, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 1.5, channels).astype(np.float32),
            rng.uniform(-0.5, 0.5, channels).astype(np.float32))


def _layer(groups, gamma, beta, **kwargs):
    layer = GroupNormalization(groups=groups, **kwargs)
    layer.build((None, None, None, len(gamma)))
    layer.set_weights([gamma, beta])
    return layer


@pytest.mark.parametrize("kwargs,num_weights", [
    ({"groups": 4}, 2),
    ({"groups": 2, "center": False, "scale": False}, 0),
])
def test_layer_contract(kwargs, num_weights):
    layer_contract.assert_layer_contract(
        GroupNormalization, kwargs, input_shape=(2, 5, 6, 8),
        expected_output_shape=(2, 5, 6, 8),
        expected_num_weights=num_weights)


def test_matches_numpy_float64():
    for groups in [1, 2, 4, 8]:
        x = layer_contract.random_input((2, 5, 4, 8), scale=3.0) + 2.0
        gamma, beta = _params(8)
        got = _layer(groups, gamma, beta)(x).numpy()
        np.testing.assert_allclose(
            got, numpy_group_norm(x, gamma, beta, groups, 1e-5), rtol=1e-5,
            atol=1e-5, err_msg=f"{groups=}")


@pytest.mark.parametrize("groups,channels", [(32, 64), (4, 12), (3, 3)])
def test_matches_keras_group_normalization(groups, channels):
    x = layer_contract.random_input((2, 7, 6, channels), scale=2.0)
    gamma, beta = _params(channels)
    keras_layer = keras.layers.GroupNormalization(groups, epsilon=1e-5)
    keras_layer.build(x.shape)
    keras_layer.set_weights([gamma, beta])
    ours = _layer(groups, gamma, beta)
    np.testing.assert_allclose(ours(x).numpy(), keras_layer(x).numpy(),
                               rtol=1e-5, atol=1e-5)
    # Same gradients, for the input and both parameters.
    xt = tf.constant(x)
    upstream = tf.constant(layer_contract.random_input(x.shape, seed=3))
    grads = []
    for layer in (ours, keras_layer):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
        grads.append(tape.gradient(y, [xt] + layer.trainable_weights,
                                   output_gradients=upstream))
    for got, expected in zip(*grads):
        expected = keras.ops.convert_to_numpy(expected)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got),
                                   expected, rtol=1e-5,
                                   atol=1e-5 * np.abs(expected).max())


def test_one_group_is_layer_norm_over_hwc():
    x = layer_contract.random_input((3, 4, 5, 6))
    expected = keras.layers.LayerNormalization(
        axis=(1, 2, 3), epsilon=1e-5)(x)
    got = GroupNormalization(groups=1)(x)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5,
                               atol=1e-5)


def test_groups_equal_channels_is_instance_norm():
    x = layer_contract.random_input((3, 4, 5, 6)).astype(np.float64)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5)
    got = GroupNormalization(groups=6)(x.astype(np.float32))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_hand_computed_values():
    # One sample, one group of four values 1, 2, 3, 4: mean 2.5, variance
    # 1.25, so (x - 2.5) / sqrt(1.25 + 1e-5).
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 2, 1, 2)
    got = GroupNormalization(groups=1)(x).numpy().ravel()
    np.testing.assert_allclose(
        got, [-1.341635, -0.447212, 0.447212, 1.341635], atol=1e-5)


def test_rank_3_and_5_inputs():
    for shape in [(2, 7, 6), (2, 3, 4, 5, 6)]:
        x = layer_contract.random_input(shape)
        ours = GroupNormalization(groups=3)(x)
        expected = keras.layers.GroupNormalization(3, epsilon=1e-5)(x)
        np.testing.assert_allclose(ours.numpy(), expected.numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_channels_first_equals_channels_last():
    x = layer_contract.random_input((2, 4, 5, 8))
    gamma, beta = _params(8)
    last = _layer(4, gamma, beta)(x)
    first = GroupNormalization(groups=4, data_format="channels_first")
    first.build((None, 8, None, None))
    first.set_weights([gamma, beta])
    got = first(np.transpose(x, (0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(np.transpose(got, (0, 2, 3, 1)), last.numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels_last", [True, False])
def test_gradient_is_numerically_correct(channels_last):
    rng = np.random.default_rng(0)
    shape = (2, 3, 2, 4) if channels_last else (2, 4, 3, 2)
    x = tf.constant(rng.standard_normal(shape) * 2.0 + 1.0)
    gamma = tf.constant(rng.uniform(0.5, 1.5, 4))
    beta = tf.constant(rng.uniform(-0.5, 0.5, 4))

    def f(x, gamma, beta):
        return group_norm.group_norm(x, gamma, beta, groups=2, epsilon=1e-5,
                                     channels_last=channels_last)

    layer_contract.assert_numerical_gradient(f, [x, gamma, beta])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    # An offset of 1000 with unit spread: float16 moments would lose the
    # variance entirely; the layer computes them in float32.
    layer_contract.assert_mixed_precision(
        GroupNormalization, {"groups": 2}, (2, 4, 4, 8), policy)
    x = layer_contract.random_input((2, 4, 4, 8)) + 1000.0
    y = GroupNormalization(groups=2, dtype=policy)(x)
    assert y.dtype == keras.DTypePolicy(policy).compute_dtype
    np.testing.assert_allclose(
        tf.cast(y, tf.float32).numpy(),
        numpy_group_norm(x, 1.0, 0.0, 2, 1e-5), atol=0.2)


def test_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match="must be a multiple"):
        GroupNormalization(groups=32)(np.ones((1, 2, 2, 48), np.float32))


def test_undefined_channels_are_rejected():
    with pytest.raises(ValueError, match="channel dimension"):
        GroupNormalization(groups=2)(keras.Input((4, 4, None)))


def test_bad_groups_are_rejected():
    for groups in [0, -1, 2.0, True]:
        with pytest.raises(ValueError, match="Received: groups="):
            GroupNormalization(groups=groups)


def test_bad_epsilon_is_rejected():
    with pytest.raises(ValueError, match="Received: epsilon=0"):
        GroupNormalization(epsilon=0)
