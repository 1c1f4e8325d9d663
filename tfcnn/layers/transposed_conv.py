"""Transposed 2D convolution (multiplication by the transposed W_S).

A convolution of an r x r input with an a x a kernel, stride s and zero
padding p is a multiplication ``Y_S = W_S X_S`` of the serialized input by a
sparse matrix ``W_S`` (Dumoulin & Visin, 2016). The transposed convolution
multiplies by ``W_S^T``: it maps an o x o input back to r x r, with

    r = (o - 1) s + a - 2 p + output_padding.

"same" padding is the transpose of ``Conv2D(padding="same")`` (output
``o * s``); "valid" is ``p = 0``; an int or a pair gives ``p`` explicitly,
as in Dumoulin & Visin's (2016) convolution arithmetic and PyTorch's
``ConvTranspose2d(padding=p, output_padding=...)``, so ported weights give
the same numbers.

``kernel_initializer="bilinear"`` (``tfcnn.layers.BilinearUpsampling``)
fills the kernel so that an untrained layer upsamples each channel
bilinearly, as the FCN of Long, Shelhamer & Darrell does (kernel size
``2 f - f % 2`` for a factor ``f = stride``).
"""

import keras

from tfcnn.layers import conv_args
from tfcnn.layers.initializers import BilinearUpsampling


@keras.saving.register_keras_serializable(package="tfcnn")
class TransposedConv2D(keras.layers.Conv2DTranspose):
    """Transposed 2D convolution: multiplication by ``W_S^T``.

    ``keras.layers.Conv2DTranspose`` plus explicit integer padding (the
    ``p`` of Dumoulin & Visin 2016 and of PyTorch) and the "bilinear"
    kernel initializer.

    Args:
        filters: int, the number of output channels.
        kernel_size: int or pair of ints, a.
        strides: int or pair of ints, s. Defaults to 1.
        padding: "valid" (p = 0), "same" (output ``input * s``, the
            transpose of a "same" convolution) or an int / pair of ints p
            >= 0: the output side is ``(o - 1) s + a - 2 p +
            output_padding``. Defaults to "valid".
        output_padding: None, or int / pair of ints < ``strides``: extra
            rows and columns at the bottom and right, to pick among the
            input sizes that a strided convolution maps to the same output
            size. Defaults to None (0 for integer padding).
        data_format: "channels_last" or "channels_first". Defaults to
            ``keras.config.image_data_format()``.
        activation: activation function. Defaults to None.
        use_bias: bool. Defaults to True.
        kernel_initializer: kernel initializer, or "bilinear" for
            ``BilinearUpsampling()``. Defaults to "glorot_uniform".
        bias_initializer: bias initializer. Defaults to "zeros".
        kernel_regularizer: optional kernel regularizer.
        bias_regularizer: optional bias regularizer.
        activity_regularizer: optional output regularizer.
        kernel_constraint: optional kernel constraint.
        bias_constraint: optional bias constraint.
        **kwargs: other ``keras.layers.Conv2DTranspose`` keyword arguments
            (``name``, ``dtype``, ``dilation_rate``).

    Input shape:
        4D tensor ``(batch, rows, cols, channels)`` (channels_last) or
        ``(batch, channels, rows, cols)``; any batch and spatial size.

    Output shape:
        4D tensor ``(batch, new_rows, new_cols, filters)``.

    Raises:
        ValueError: for a negative padding, an output padding not smaller
            than the stride, or (when built) a padding that leaves no
            output.

    Reference:
        - [Dumoulin & Visin, 2016](https://arxiv.org/abs/1603.07285)
        - [Long et al., 2015](https://arxiv.org/abs/1411.4038) (bilinear
          initialization)

    Example:

    >>> up = TransposedConv2D(3, 4, strides=2, padding="same",
    ...                       kernel_initializer="bilinear", use_bias=False)
    >>> up(keras.ops.ones((1, 8, 8, 3))).shape
    TensorShape([1, 16, 16, 3])
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid",
                 output_padding=None, data_format=None, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        if isinstance(padding, str):
            self.explicit_padding = None
            keras_padding = padding
        else:
            self.explicit_padding = conv_args.int_pair(padding, "padding")
            keras_padding = "valid"
            if output_padding is None:
                output_padding = 0
        if (isinstance(kernel_initializer, str)
                and kernel_initializer.lower() == "bilinear"):
            kernel_initializer = BilinearUpsampling()
        super().__init__(
            filters=filters, kernel_size=kernel_size, strides=strides,
            padding=keras_padding, output_padding=output_padding,
            data_format=conv_args.data_format(data_format),
            activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        shape = self.compute_output_shape(input_shape)
        if any(shape[axis] is not None and shape[axis] < 1
               for axis in self._spatial_axes()):
            raise ValueError(
                "The padding removes the whole output: (o - 1) s + a - 2 p "
                f"+ output_padding < 1 for input shape {input_shape}. "
                f"Received: padding={self.explicit_padding}")

    def call(self, inputs):
        outputs = super().call(inputs)
        if self.explicit_padding is None or self.explicit_padding == (0, 0):
            return outputs
        # The "valid" transposed convolution is the full W_S^T product;
        # explicit padding p drops p rows and columns on each side.
        py, px = self.explicit_padding
        rows, cols = self._spatial_axes()
        crop = [slice(None)] * 4
        crop[rows] = slice(py, keras.ops.shape(outputs)[rows] - py)
        crop[cols] = slice(px, keras.ops.shape(outputs)[cols] - px)
        return outputs[tuple(crop)]

    def _spatial_axes(self):
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def compute_output_shape(self, input_shape):
        shape = list(super().compute_output_shape(input_shape))
        if self.explicit_padding is not None:
            for axis, pad in zip(self._spatial_axes(), self.explicit_padding):
                if shape[axis] is not None:
                    shape[axis] -= 2 * pad
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        if self.explicit_padding is not None:
            config["padding"] = self.explicit_padding
        return config
