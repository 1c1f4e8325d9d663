"""Kernel initializers that make an untrained convolution a known operator.

``BilinearUpsampling`` (for ``TransposedConv2D``, as in FCN) makes each
channel upsample bilinearly; ``IdentityKernel`` (for ``DilatedConv2D``, as in
Yu & Koltun's context module) makes each channel pass through. Both put one
spatial filter on the channel diagonal ``[:, :, j, j]`` and zeros elsewhere,
so channels do not mix. Both are registered, so a layer configured with them
saves and loads.
"""

import keras
import numpy as np


def _diagonal_kernel(name, shape, make_taps, dtype):
    """A 4D kernel with ``make_taps(kh, kw)`` at ``[:, :, j, j]``, else 0."""
    if len(shape) != 4:
        raise ValueError(
            f"{name} needs a 4D kernel shape (kh, kw, channels, channels). "
            f"Received: shape={tuple(shape)}")
    kernel = np.zeros(shape, dtype=np.float32)
    taps = make_taps(shape[0], shape[1])
    for j in range(min(shape[2], shape[3])):
        kernel[:, :, j, j] = taps
    return keras.ops.convert_to_tensor(
        kernel, dtype=dtype or keras.config.floatx())


def bilinear_filter(size):
    """The 1D bilinear-interpolation filter of length ``size`` (FCN's).

    Args:
        size: int, the kernel length ``2 f - f % 2`` for a factor ``f``.

    Returns:
        float64 NumPy array of length ``size``.
    """
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    return 1.0 - np.abs(np.arange(size) - centre) / factor


@keras.saving.register_keras_serializable(package="tfcnn")
class BilinearUpsampling(keras.initializers.Initializer):
    """Kernel initializer: bilinear interpolation, channel by channel.

    For a transposed-convolution kernel of shape
    ``(kh, kw, out_channels, in_channels)`` it puts the separable bilinear
    filter ``w[i] = 1 - |i - c| / f`` (``f = ceil(k / 2)``,
    ``c = f - 1`` for odd ``k`` and ``f - 0.5`` for even ``k``) at
    ``[:, :, j, j]`` for ``j < min(out_channels, in_channels)`` and zeros
    elsewhere. With ``kernel_size = 2 * stride - stride % 2`` and "same"
    padding, the layer output equals
    ``tf.image.resize(x, ..., "bilinear")`` (half-pixel centres) away from
    the border; at the border the transposed convolution sees zeros where
    the resize repeats the edge pixel.

    Reference:
        - [Long et al., 2015](https://arxiv.org/abs/1411.4038)

    Example:

    >>> init = BilinearUpsampling()
    >>> init((4, 4, 1, 1))[:, 0, 0, 0].numpy()
    array([0.0625, 0.1875, 0.1875, 0.0625], dtype=float32)
    """

    def __call__(self, shape, dtype=None):
        def make_taps(kh, kw):
            return np.outer(bilinear_filter(kh), bilinear_filter(kw))

        return _diagonal_kernel("BilinearUpsampling", shape, make_taps,
                                dtype)

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package="tfcnn")
class IdentityKernel(keras.initializers.Initializer):
    """Kernel initializer: the convolution passes its input through.

    Yu & Koltun's identity initialization for the context module (random
    initialization did not train there): for a kernel of shape
    ``(kh, kw, in_channels, out_channels)`` it puts 1 at
    ``[(kh - 1) // 2, (kw - 1) // 2, j, j]`` for
    ``j < min(in_channels, out_channels)`` and zeros elsewhere, so a
    "same" convolution copies channel j to channel j: for odd kernel sizes
    at any dilation, for even sizes at dilation 1 (an even dilated kernel
    has no tap at the centre of its "same" window).

    Reference:
        - [Yu & Koltun, 2016](https://arxiv.org/abs/1511.07122), section 3.

    Example:

    >>> init = IdentityKernel()
    >>> float(keras.ops.sum(init((3, 3, 2, 2))))
    2.0
    """

    def __call__(self, shape, dtype=None):
        def make_taps(kh, kw):
            taps = np.zeros((kh, kw))
            taps[(kh - 1) // 2, (kw - 1) // 2] = 1.0
            return taps

        return _diagonal_kernel("IdentityKernel", shape, make_taps, dtype)

    def get_config(self):
        return {}
