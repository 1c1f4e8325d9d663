"""Local response normalization (Krizhevsky et al., 2012), both variants.

Inter-channel LRN divides each activation by a power of the sum of squares
over ``size`` neighbouring channels at the same pixel (AlexNet):

    b[c] = a[c] / (k + alpha * S[c]) ** beta,
    S[c] = sum of a[j] ** 2 for |j - c| <= (size - 1) / 2, 0 <= j < C.

Intra-channel LRN (the variant of cuda-convnet's ``rnorm`` layer) sums the
squares over a ``size`` x ``size`` spatial window inside each channel
instead; positions outside the image count as zero.

Conventions for ``alpha`` differ between frameworks: the paper and
``tf.nn.local_response_normalization`` multiply the *sum* by ``alpha``;
Caffe and PyTorch (``torch.nn.LocalResponseNorm``) multiply the *mean*, i.e.
they divide ``alpha`` by the window size (``size`` across channels,
``size ** 2`` within a channel in Caffe). ``alpha_convention`` picks one, so
hyperparameters ported from either side give the same numbers.
"""

import keras
from keras import ops

from tfcnn.layers import conv_args
from tfcnn.layers import window_sum

_MODES = ("inter_channel", "intra_channel")
_ALPHA_CONVENTIONS = ("sum", "mean")
_IMPLEMENTATIONS = ("custom", "tf_op")


@keras.saving.register_keras_serializable(package="tfcnn")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalization across or within channels.

    The defaults are AlexNet's (k=2, n=5, alpha=1e-4, beta=0.75). The
    normalization is computed in float32 (float64 for float64 inputs)
    whatever the dtype policy, so ``mixed_float16`` cannot overflow in the
    sum of squares.

    Inter-channel LRN is not ``tf.nn.local_response_normalization`` but
    the same formula in ``keras.ops`` (any Keras backend). Under the
    TensorFlow backend the channel-window sum is a banded C x C matrix
    product (a sum of shifted slices above 192 channels, or along axis 1
    for channels_first) with a hand-written gradient (the backward pass is
    one more window sum, ``tfcnn.layers.tf_gradients``): it matches
    the TF op to float32 rounding and runs forward+backward in well under
    the op's time on CPU (whose gradient kernel is a scalar loop); see
    ``benchmarks/layers.py``. ``implementation="tf_op"`` calls the TF op
    instead (TensorFlow backend only; for example to get cuDNN's LRN on a
    GPU).

    Args:
        size: int, the window size n: channels for "inter_channel", pixels
            per side for "intra_channel". Must be odd, so the window is
            centred (TF's ``depth_radius`` is ``(size - 1) // 2``). Defaults
            to 5.
        bias: float > 0, k, added to the scaled sum. Defaults to 2.0.
        alpha: float >= 0, the scale of the sum of squares. Defaults to
            1e-4.
        beta: float >= 0, the exponent. Defaults to 0.75.
        mode: "inter_channel" (across neighbouring channels, AlexNet) or
            "intra_channel" (over a spatial window inside each channel).
            Defaults to "inter_channel".
        alpha_convention: "sum" (``alpha`` multiplies the window sum: the
            paper, ``tf.nn.local_response_normalization``) or "mean"
            (``alpha`` multiplies the window mean, i.e. ``alpha / size``
            across channels and ``alpha / size ** 2`` within a channel:
            Caffe, PyTorch). Caffe's WITHIN_CHANNEL also fixes k = 1, so
            port it with ``bias=1.0``. Defaults to "sum".
        data_format: "channels_last" or "channels_first". Defaults to
            ``keras.config.image_data_format()``.
        implementation: "custom" (the banded-matrix version with its
            hand-written gradient) or "tf_op"
            (``tf.nn.local_response_normalization``; inter-channel only,
            channels_first by transposing). Defaults to "custom".
        **kwargs: base layer keyword arguments (``name``, ``dtype``).

    Input shape:
        4D tensor ``(batch, height, width, channels)`` (channels_last) or
        ``(batch, channels, height, width)`` (channels_first); any batch and
        spatial size.

    Output shape:
        Same as the input.

    Raises:
        ValueError: for an even or non-positive ``size``, a non-positive
            ``bias``, a negative ``alpha`` or ``beta``, an unknown
            ``mode``, ``alpha_convention`` or ``implementation``, "tf_op"
            with "intra_channel" or under a backend other than
            TensorFlow, or (when built) an input that is not 4D or has no
            defined channel dimension.

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
                 data_format=None, implementation="custom", **kwargs):
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
        if implementation not in _IMPLEMENTATIONS:
            raise ValueError(
                "Argument `implementation` must be one of "
                f"{_IMPLEMENTATIONS}. "
                f"Received: implementation={implementation!r}")
        if (implementation == "tf_op"
                and keras.backend.backend() != "tensorflow"):
            raise ValueError(
                "implementation='tf_op' needs the TensorFlow backend; "
                "use implementation='custom' under "
                f"{keras.backend.backend()!r}. "
                f"Received: implementation={implementation!r}")
        if implementation == "tf_op" and mode != "inter_channel":
            raise ValueError(
                "The TF op computes inter-channel LRN only; use "
                "implementation='custom' for mode='intra_channel'. "
                f"Received: implementation={implementation!r}")
        if not bias > 0:
            # k + alpha * S must stay positive for an all-zero window.
            raise ValueError(
                f"Argument `bias` must be > 0. Received: bias={bias}")
        if alpha < 0:
            raise ValueError(
                f"Argument `alpha` must be >= 0. Received: alpha={alpha}")
        if beta < 0:
            raise ValueError(
                f"Argument `beta` must be >= 0. Received: beta={beta}")
        self.size = size
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.mode = mode
        self.alpha_convention = alpha_convention
        self.implementation = implementation
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
        x = ops.cast(inputs, _statistics_dtype(inputs.dtype))
        alpha = self.alpha
        if self.alpha_convention == "mean":
            alpha /= self.size if self.mode == "inter_channel" else (
                self.size ** 2)
        if self.implementation == "tf_op":
            y = self._tf_op(x, alpha)
        elif self.mode == "inter_channel":
            axis = 3 if self.data_format == "channels_last" else 1
            y = inter_channel_lrn(x, self.size // 2, self.bias, alpha,
                                  self.beta, axis=axis)
        else:
            y = self._intra_channel(x, alpha)
        return ops.cast(y, self.compute_dtype)

    def _tf_op(self, x, alpha):
        # Checked in __init__: "tf_op" exists under TensorFlow only.
        import tensorflow as tf

        # The op has float32 and 16-bit kernels only.
        x = tf.cast(x, tf.float32)
        if self.data_format == "channels_first":
            x = tf.transpose(x, (0, 2, 3, 1))
        y = tf.nn.local_response_normalization(
            x, depth_radius=self.size // 2, bias=self.bias, alpha=alpha,
            beta=self.beta)
        if self.data_format == "channels_first":
            y = tf.transpose(y, (0, 3, 1, 2))
        return y

    def _intra_channel(self, x, alpha):
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 3, 1))
        r = self.size // 2
        # Zero padding then a VALID average pool gives the window sum over
        # the image with zeros outside; a SAME pool would divide by the
        # clipped window size instead.
        padded = ops.pad(ops.square(x), [[0, 0], [r, r], [r, r], [0, 0]])
        window_mean = ops.average_pool(padded, self.size, 1, "valid",
                                       data_format="channels_last")
        base = self.bias + (alpha * self.size ** 2) * window_mean
        y = x * _negative_power(base, self.beta)
        if self.data_format == "channels_first":
            y = ops.transpose(y, (0, 3, 1, 2))
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
            "implementation": self.implementation,
        })
        return config


def inter_channel_lrn(x, depth_radius, bias, alpha, beta, axis=-1):
    """Inter-channel LRN along any axis, on any Keras backend.

    Same numbers as ``tf.nn.local_response_normalization(x, depth_radius,
    bias, alpha, beta)`` (which only takes the last axis), to float32
    rounding. Under the TensorFlow backend this is
    ``tfcnn.layers.tf_gradients.inter_channel_lrn`` (a hand-written
    gradient, faster than autodiff there); elsewhere the same formula in
    ``keras.ops`` (the window sum as shifted slices), differentiated by
    the backend.

    Args:
        x: float32 tensor with a defined channel dimension.
        depth_radius: int, half the window: the window is ``2 r + 1``.
        bias: float, k.
        alpha: float, scale of the window sum of squares.
        beta: float, exponent.
        axis: int, the channel axis. Defaults to -1.

    Returns:
        A tensor like ``x``.
    """
    if keras.backend.backend() == "tensorflow":
        from tfcnn.layers import tf_gradients

        return tf_gradients.inter_channel_lrn(x, depth_radius, bias, alpha,
                                              beta, axis=axis)
    # 2r + 1 shifted slices, which XLA fuses with the power: a tiny
    # AlexNet's JAX training step took 0.43x the time of the same net with
    # a textbook LRN this way, 1.28x with TensorFlow's banded matrix
    # product (benchmarks/gpu_keras.py --cpu-smoke, on a loaded CPU).
    total = window_sum.shifted_window_sum(ops.square(x), depth_radius,
                                          axis % len(x.shape))
    return x * _negative_power(alpha * total + bias, beta)


def _statistics_dtype(dtype):
    """float64 for float64 inputs, else float32 (never a 16-bit type)."""
    return "float64" if keras.backend.standardize_dtype(
        dtype) == "float64" else "float32"


def _negative_power(base, beta):
    """``base ** -beta``, with the common exponents done by square roots."""
    if beta == 0.75:
        inv_sqrt = ops.rsqrt(base)
        return inv_sqrt * ops.sqrt(inv_sqrt)
    if beta == 0.5:
        return ops.rsqrt(base)
    if beta == 1.0:
        return 1.0 / base
    return ops.power(base, -beta)
