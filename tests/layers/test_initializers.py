"""Tests for tfcnn.layers.initializers: BilinearUpsampling, IdentityKernel.

What the kernels do inside the layers (bilinear upsampling, identity) is
tested with the layers; here: values, channel layout, serialization.
"""

import keras
import numpy as np
import pytest

from tfcnn.layers import BilinearUpsampling
from tfcnn.layers import IdentityKernel
from tfcnn.layers import TransposedConv2D
from tfcnn.layers import initializers


def test_bilinear_filter_values():
    np.testing.assert_allclose(initializers.bilinear_filter(4),
                               [0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(initializers.bilinear_filter(5),
                               [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])


def test_bilinear_initializer_is_per_channel_and_registered():
    kernel = BilinearUpsampling()((4, 4, 3, 2)).numpy()
    assert np.count_nonzero(kernel[:, :, 2, :]) == 0   # no third input
    assert np.count_nonzero(kernel[:, :, 0, 1]) == 0   # no cross talk
    np.testing.assert_allclose(kernel[:, :, 1, 1],
                               np.outer([.25, .75, .75, .25],
                                        [.25, .75, .75, .25]))
    restored = keras.initializers.deserialize(
        keras.initializers.serialize(BilinearUpsampling()))
    assert isinstance(restored, BilinearUpsampling)
    layer = TransposedConv2D(2, 4, kernel_initializer="bilinear")
    assert isinstance(layer.kernel_initializer, BilinearUpsampling)


def test_bilinear_initializer_needs_4d_shape():
    with pytest.raises(ValueError, match=r"Received: shape=\(3, 3\)"):
        BilinearUpsampling()((3, 3))


def test_identity_kernel_copies_the_shared_channels():
    kernel = IdentityKernel()((3, 3, 2, 3)).numpy()
    assert kernel.sum() == 2.0
    assert kernel[1, 1, 0, 0] == kernel[1, 1, 1, 1] == 1.0
    with pytest.raises(ValueError, match=r"Received: shape=\(3,\)"):
        IdentityKernel()((3,))
    restored = keras.initializers.deserialize(
        keras.initializers.serialize(IdentityKernel()))
    assert isinstance(restored, IdentityKernel)


@pytest.mark.parametrize("cls", [BilinearUpsampling, IdentityKernel])
def test_follows_the_dtype(cls):
    assert cls()((3, 3, 1, 1), dtype="float64").dtype == "float64"
