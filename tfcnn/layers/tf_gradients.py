"""TensorFlow-backend kernels of LRN and group norm, with hand-written
gradients.

``LocalResponseNormalization`` and ``GroupNormalization`` call these under
the TensorFlow backend only (imported when first called, so the model half
imports no TensorFlow): their gradients run in about 0.5x and 0.6x of the
autodiff graphs of the same forward ops on CPU (``benchmarks/layers.py``).
Under other backends the layers use their ``keras.ops`` formulas, with the
same numbers to float32 rounding.
"""

import numpy as np
import tensorflow as tf

from tfcnn.layers import window_sum


def inter_channel_lrn(x, depth_radius, bias, alpha, beta, axis=-1):
    """Inter-channel LRN with a hand-written gradient, along any axis.

    Arguments and result as ``tfcnn.layers.lrn.inter_channel_lrn``.
    """
    window = _channel_window(x.shape, depth_radius, axis)

    @tf.custom_gradient
    def lrn(a):
        base = window(tf.square(a), alpha) + bias
        scale = negative_power(base, beta)
        y = a * scale

        def grad(g):
            # d y_c / d a_j = scale_c [c == j]
            #                 - 2 alpha beta a_j y_c / base_c  (|c - j| <= r)
            # The window is symmetric, so the sum over c is the same window
            # sum as in the forward pass.
            return g * scale + a * window(g * y / base,
                                          -2.0 * alpha * beta)

        return y, grad

    return lrn(x)


# Up to this many channels the window sum as a banded C x C matrix product
# (one oneDNN GEMM, the scale folded into the band) beats 2r + 1 shifted
# slices; above it the GEMM's C flops per element cost more. Measured
# fwd+bwd on a 2-core CPU, same element count: the product was 0.66x the
# slices' time at C = 96, 0.8x at 128, equal at 192, 1.45x at 256.
_MAX_BANDED_CHANNELS = 192


def _channel_window(shape, radius, axis):
    """Returns ``f(t, coeff)``: coeff times the sum over the channel window.

    The window holds the ``2 radius + 1`` channels around each channel
    along ``axis``, with zeros beyond the first and last channel.
    """
    rank = len(shape)
    axis = axis % rank
    depth = shape[axis]
    if axis == rank - 1 and depth <= _MAX_BANDED_CHANNELS:
        index = np.arange(depth)
        band = (np.abs(index[:, None] - index[None, :]) <= radius)
        band = band.astype(np.float32)

        def banded(t, coeff):
            flat = tf.reshape(t, [-1, depth])
            total = tf.matmul(flat, tf.constant(coeff * band, t.dtype))
            return tf.reshape(total, tf.shape(t))

        return banded

    def shifted(t, coeff):
        return coeff * window_sum.shifted_window_sum(t, radius, axis)

    return shifted


def negative_power(base, beta):
    """``base ** -beta``, with the common exponents done by square roots."""
    if beta == 0.75:
        inv_sqrt = tf.math.rsqrt(base)
        return inv_sqrt * tf.sqrt(inv_sqrt)
    if beta == 0.5:
        return tf.math.rsqrt(base)
    if beta == 1.0:
        return 1.0 / base
    return tf.pow(base, -beta)


def group_norm(x, gamma, beta, groups, epsilon, channels_last=True):
    """Group normalization of a float tensor, with a fused gradient.

    The statistics are reduced per sample and channel over the spatial
    positions first (a reduction over the middle axis of ``(N, M, C)``,
    which TensorFlow runs much faster than one over two separate axes of
    ``(N, M, G, C/G)``), then combined over the channels of each group on
    the small ``(N, C)`` tensors. The variance is the mean squared
    difference from the group mean (two passes), as in the paper.
    Arguments and result as ``tfcnn.layers.group_norm.group_norm``.
    """
    shape = tf.shape(x)
    channels = x.shape[-1 if channels_last else 1]
    per_group = channels // groups
    # (N, M, C) or (N, C, M), M the product of the spatial sizes; the
    # per-channel statistics are (N, 1, C) or (N, C, 1).
    flat = [shape[0], -1, channels] if channels_last else [
        shape[0], channels, -1]
    spatial = 1 if channels_last else 2
    param_shape = [1, 1, channels] if channels_last else [1, channels, 1]
    stat_shape = [-1, 1, channels] if channels_last else [-1, channels, 1]

    def group_mean(per_channel):
        """Mean over each group's channels, repeated for every channel."""
        grouped = tf.reshape(per_channel, [-1, groups, per_group])
        mean = tf.reduce_mean(grouped, 2, keepdims=True)
        return tf.reshape(tf.broadcast_to(mean, tf.shape(grouped)),
                          stat_shape)

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        x3 = tf.reshape(x, flat)
        g = tf.reshape(gamma, param_shape)
        mean = group_mean(tf.reduce_mean(x3, spatial))
        variance = group_mean(tf.reduce_mean(
            tf.math.squared_difference(x3, mean), spatial))
        inv_std = tf.math.rsqrt(variance + epsilon)
        scale = g * inv_std
        offset = tf.reshape(beta, param_shape) - mean * scale
        y = tf.reshape(x3 * scale + offset, shape)

        def grad(dy):
            dy3 = tf.reshape(dy, flat)
            x_hat = (x3 - mean) * inv_std
            # Per sample and channel: sums of dy and of dy * x_hat.
            sum_dy = tf.reduce_sum(dy3, spatial, keepdims=True)
            sum_dy_xhat = tf.reduce_sum(dy3 * x_hat, spatial, keepdims=True)
            # Group means of d x_hat = dy * gamma and of d x_hat * x_hat;
            # group_mean averages over channels, so divide by M too.
            size = tf.cast(tf.shape(x3)[spatial], x.dtype)
            mean_dxhat = group_mean(g * sum_dy) / size
            mean_dxhat_xhat = group_mean(g * sum_dy_xhat) / size
            dx = (dy3 * scale - inv_std * mean_dxhat
                  - x_hat * (inv_std * mean_dxhat_xhat))
            dgamma = tf.reshape(tf.reduce_sum(sum_dy_xhat, 0), [channels])
            dbeta = tf.reshape(tf.reduce_sum(sum_dy, 0), [channels])
            return tf.reshape(dx, shape), dgamma, dbeta

        return y, grad

    return normalize(x, gamma, beta)
