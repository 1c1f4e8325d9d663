"""Local response normalization (Krizhevsky et al., 2012), both variants.

Inter-channel LRN divides each activation by a power of the sum of squares
over ``size`` neighbouring channels at the same pixel (AlexNet):

    b[c] = a[c] / (k + alpha * S[c]) ** beta,
    S[c] = sum of a[j] ** 2 for |j - c| <= (size - 1) / 2, 0 <= j < C.

Intra-channel LRN (the second variant of seed 000) sums the squares over a
``size`` x ``size`` spatial window inside each channel instead; positions
outside the image count as zero.

Conventions for ``alpha`` differ between frameworks: the paper and
``tf.nn.local_response_normalization`` multiply the *sum* by ``alpha``;
Caffe and PyTorch (``torch.nn.LocalResponseNorm``) multiply the *mean*, i.e.
they divide ``alpha`` by the window size (``size`` across channels,
``size ** 2`` within a channel in Caffe). ``alpha_convention`` picks one, so
hyperparameters ported from either side give the same numbers.
"""

import keras
import tensorflow as tf

from tfcnn.layers import conv_args

_MODES = ("inter_channel", "intra_channel")
_ALPHA_CONVENTIONS = ("sum", "mean")


@keras.saving.register_keras_serializable(package="tfcnn")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalization across or within channels.

    The defaults are AlexNet's (k=2, n=5, alpha=1e-4, beta=0.75). The
    normalization is computed in float32 whatever the dtype policy, so
    ``mixed_float16`` cannot overflow in the sum of squares.

    Inter-channel LRN runs as a fused kernel: the channel-window sum is a
    sum of shifted slices and the gradient is written out by hand (one
    window sum backwards, as for the forward), which matches
    ``tf.nn.local_response_normalization`` to float32 rounding and trains
    faster than that op on CPU (see ``benchmarks/layers.py``).

    Args:
        size: int, the window size n: channels for "inter_channel", pixels
            per side for "intra_channel". Must be odd, so the window is
            centred (TF's ``depth_radius`` is ``(size - 1) // 2``). Defaults
            to 5.
        bias: float, k, added to the scaled sum. Defaults to 2.0.
        alpha: float, the scale of the sum of squares. Defaults to 1e-4.
        beta: float, the exponent. Defaults to 0.75.
        mode: "inter_channel" (across neighbouring channels, AlexNet) or
            "intra_channel" (over a spatial window inside each channel).
            Defaults to "inter_channel".
        alpha_convention: "sum" (``alpha`` multiplies the window sum: the
            paper, ``tf.nn.local_response_normalization``) or "mean"
            (``alpha`` multiplies the window mean, i.e. ``alpha / size``
            across channels and ``alpha / size ** 2`` within a channel:
            Caffe, PyTorch). Defaults to "sum".
        data_format: "channels_last" or "channels_first". Defaults to
            ``keras.config.image_data_format()``.
        **kwargs: base layer keyword arguments (``name``, ``dtype``).

    Input shape:
        4D tensor ``(batch, height, width, channels)`` (channels_last) or
        ``(batch, channels, height, width)`` (channels_first); any batch and
        spatial size.

    Output shape:
        Same as the input.

    Reference:
        - [Krizhevsky et al., 2012](https://papers.nips.cc/paper/4824),
          section 3.3.

    Example:

    >>> layer = LocalResponseNormalization()
    >>> layer(keras.ops.ones((1, 4, 4, 8))).shape
    TensorShape([1, 4, 4, 8])
    """

    def __init__(self, size=5, bias=2.0, alpha=1e-4, beta=0.75,
                 mode="inter_channel", alpha_convention="sum",
                 data_format=None, **kwargs):
        super().__init__(**kwargs)
        if (not isinstance(size, int) or isinstance(size, bool) or size < 1
                or size % 2 == 0):
            raise ValueError(
                "Argument `size` must be a positive odd integer (the window "
                f"is centred). Received: size={size}")
        if mode not in _MODES:
            raise ValueError(
                f"Argument `mode` must be one of {_MODES}. "
                f"Received: mode={mode!r}")
        if alpha_convention not in _ALPHA_CONVENTIONS:
            raise ValueError(
                "Argument `alpha_convention` must be one of "
                f"{_ALPHA_CONVENTIONS}. "
                f"Received: alpha_convention={alpha_convention!r}")
        if beta < 0:
            raise ValueError(
                f"Argument `beta` must be >= 0. Received: beta={beta}")
        self.size = size
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.mode = mode
        self.alpha_convention = alpha_convention
        self.data_format = conv_args.data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)
        self.supports_masking = True

    def build(self, input_shape):
        channel_axis = conv_args.channel_axis(self.data_format)
        if len(input_shape) != 4 or input_shape[channel_axis] is None:
            raise ValueError(
                "LocalResponseNormalization needs a 4D input with a defined "
                f"channel dimension. Received: input_shape={input_shape}")
        self.input_spec = keras.layers.InputSpec(
            ndim=4, axes={channel_axis: input_shape[channel_axis]})

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        alpha = self.alpha
        if self.alpha_convention == "mean":
            alpha /= self.size if self.mode == "inter_channel" else (
                self.size ** 2)
        if self.mode == "inter_channel":
            axis = 3 if self.data_format == "channels_last" else 1
            y = inter_channel_lrn(x, self.size // 2, self.bias, alpha,
                                  self.beta, axis=axis)
        else:
            y = self._intra_channel(x, alpha)
        return tf.cast(y, self.compute_dtype)

    def _intra_channel(self, x, alpha):
        if self.data_format == "channels_first":
            x = tf.transpose(x, (0, 2, 3, 1))
        r = self.size // 2
        # Zero padding then a VALID average pool gives the window sum over
        # the image with zeros outside; a SAME pool would divide by the
        # clipped window size instead.
        padded = tf.pad(tf.square(x), [[0, 0], [r, r], [r, r], [0, 0]])
        window_sum = tf.nn.avg_pool2d(
            padded, self.size, 1, "VALID") * float(self.size ** 2)
        y = x * tf.pow(self.bias + alpha * window_sum, -self.beta)
        if self.data_format == "channels_first":
            y = tf.transpose(y, (0, 3, 1, 2))
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "size": self.size,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
            "mode": self.mode,
            "alpha_convention": self.alpha_convention,
            "data_format": self.data_format,
        })
        return config


def inter_channel_lrn(x, depth_radius, bias, alpha, beta, axis=-1):
    """Inter-channel LRN with a hand-written gradient, along any axis.

    Same numbers as ``tf.nn.local_response_normalization(x, depth_radius,
    bias, alpha, beta)`` (which only takes the last axis).

    Args:
        x: float32 tensor.
        depth_radius: int, half the window: the window is ``2 r + 1``.
        bias: float, k.
        alpha: float, scale of the window sum of squares.
        beta: float, exponent.
        axis: int, the channel axis. Defaults to -1.

    Returns:
        A tensor like ``x``.
    """
    axis = axis % x.shape.rank

    @tf.custom_gradient
    def lrn(a):
        base = bias + alpha * _window_sum(tf.square(a), depth_radius, axis)
        scale = _negative_power(base, beta)
        y = a * scale

        def grad(g):
            # d b_c / d a_j = scale_c [c == j]
            #                 - 2 alpha beta a_c a_j scale_c / base_c
            # summed over the window: the window is symmetric, so its
            # transpose is the same window sum.
            inner = g * y / base
            return g * scale - (2.0 * alpha * beta) * a * _window_sum(
                inner, depth_radius, axis)

        return y, grad

    return lrn(x)


def _window_sum(x, radius, axis):
    """Sum over ``2 radius + 1`` neighbours along ``axis``, zeros outside.

    A sum of shifted slices of the zero-padded tensor: 2r + 1 adds, fewer
    operations than the banded (C x C) 1x1 convolution the sum also is, and
    exact in float32, unlike a difference of cumulative sums.
    """
    if radius == 0:
        return x
    depth = x.shape[axis]
    paddings = [[0, 0]] * x.shape.rank
    paddings[axis] = [radius, radius]
    padded = tf.pad(x, paddings)
    index = [slice(None)] * x.shape.rank
    total = None
    for offset in range(2 * radius + 1):
        index[axis] = slice(offset, offset + depth)
        part = padded[tuple(index)]
        total = part if total is None else total + part
    return total


def _negative_power(base, beta):
    """``base ** -beta``, with the common exponents done by square roots."""
    if beta == 0.75:
        inv_sqrt = tf.math.rsqrt(base)
        return inv_sqrt * tf.sqrt(inv_sqrt)
    if beta == 0.5:
        return tf.math.rsqrt(base)
    if beta == 1.0:
        return 1.0 / base
    return tf.pow(base, -beta)
