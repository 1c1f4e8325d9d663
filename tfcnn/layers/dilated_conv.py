"""Dilated (atrous) 2D convolution (Yu & Koltun, 2016).

A dilation rate d puts d - 1 gaps between the taps of the kernel, so an
a x a kernel covers ``a + (a - 1)(d - 1)`` pixels per side with a*a weights.
The output side length is ``r`` for "same" padding and
``r - (a + (a - 1)(d - 1)) + 1`` for "valid" (stride 1).

This is ``keras.layers.Conv2D`` with dilation 2 and "same" padding as
defaults, the effective kernel size exposed, and the arguments checked (a
dilated convolution has stride 1). The math is Keras' own.
``kernel_initializer="identity"`` gives ``IdentityKernel``, the
initialization Yu & Koltun's context module trains from.
"""

import keras

from tfcnn.layers import conv_args
from tfcnn.layers.initializers import IdentityKernel


@keras.saving.register_keras_serializable(package="tfcnn")
class DilatedConv2D(keras.layers.Conv2D):
    """2D convolution with a dilated kernel, stride 1.

    Args:
        filters: int, the number of output channels.
        kernel_size: int or pair of ints, the kernel size a (before
            dilation).
        dilation_rate: int or pair of ints >= 1, d. Defaults to 2.
        padding: "same" (output size = input size) or "valid" (no padding:
            ``r - a_eff + 1``). Defaults to "same".
        data_format: "channels_last" or "channels_first". Defaults to
            ``keras.config.image_data_format()``.
        activation: activation function. Defaults to None.
        use_bias: bool. Defaults to True.
        kernel_initializer: kernel initializer, or "identity" for
            ``IdentityKernel()``. Defaults to "glorot_uniform".
        bias_initializer: bias initializer. Defaults to "zeros".
        kernel_regularizer: optional kernel regularizer.
        bias_regularizer: optional bias regularizer.
        activity_regularizer: optional output regularizer.
        kernel_constraint: optional kernel constraint.
        bias_constraint: optional bias constraint.
        **kwargs: other ``keras.layers.Conv2D`` keyword arguments (``name``,
            ``dtype``, ``groups``).

    Input shape:
        4D tensor ``(batch, rows, cols, channels)`` (channels_last) or
        ``(batch, channels, rows, cols)``; any batch and spatial size
        (at least ``a_eff`` for "valid").

    Output shape:
        4D tensor ``(batch, new_rows, new_cols, filters)``.

    Raises:
        ValueError: for a dilation rate below 1, a stride other than 1, or
            a padding other than "same" or "valid".

    Reference:
        - [Yu & Koltun, 2016](https://arxiv.org/abs/1511.07122)

    Example:

    >>> layer = DilatedConv2D(8, 3, dilation_rate=2)
    >>> layer.effective_kernel_size
    (5, 5)
    """

    def __init__(self, filters, kernel_size, dilation_rate=2, padding="same",
                 data_format=None, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        conv_args.int_pair(dilation_rate, "dilation_rate", minimum=1)
        strides = kwargs.pop("strides", 1)
        if conv_args.int_pair(strides, "strides", minimum=1) != (1, 1):
            raise ValueError(
                "DilatedConv2D has stride 1 (use a strided Conv2D, or "
                "pooling, to subsample). Received: strides="
                f"{strides!r}")
        if str(padding).lower() not in ("same", "valid"):
            raise ValueError(
                "Argument `padding` must be 'same' or 'valid'. "
                f"Received: padding={padding!r}")
        if (isinstance(kernel_initializer, str)
                and kernel_initializer.lower() == "identity"):
            kernel_initializer = IdentityKernel()
        super().__init__(
            filters=filters, kernel_size=kernel_size, strides=1,
            padding=padding, data_format=conv_args.data_format(data_format),
            dilation_rate=dilation_rate, activation=activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint, **kwargs)

    @property
    def effective_kernel_size(self):
        """Side lengths covered by the dilated kernel, a + (a-1)(d-1)."""
        return tuple(a + (a - 1) * (d - 1) for a, d in
                     zip(self.kernel_size, self.dilation_rate))

    def get_config(self):
        config = super().get_config()
        # Stride is always 1 here; it is not a constructor argument.
        config.pop("strides", None)
        return config
