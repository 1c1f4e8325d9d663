"""Convolution -> normalization -> activation, the unit every model repeats.

``conv_norm_act`` is the one place where a model's choice of normalization
(batch norm, tfcnn's group norm, or none) and of dilation turns into layers,
so that VGG, ResNet, GoogLeNet, FCN and the dilated network name and build
their convolutions the same way (no Conv+BN+ReLU stem repeated by hand).

Layer names are ``{name}_conv``, ``{name}_bn`` or ``{name}_gn`` and
``{name}_{activation}``, as in ``keras.applications``.
"""

import keras

from tfcnn import layers as tfcnn_layers

NORMALIZATIONS = (None, "batch", "group")

# Batch norm as in the ResNet paper's Torch/Caffe code: epsilon 1e-5 and a
# moving-average decay of 0.9 (Keras' 0.99 adapts too slowly for short runs).
_BN_EPSILON = 1e-5
_BN_MOMENTUM = 0.9


def check_norm(norm, norm_groups=32):
    """Validates a normalization choice.

    Args:
        norm: None, "batch" or "group".
        norm_groups: int, groups of group normalization.

    Raises:
        ValueError: naming the argument and the received value.
    """
    if norm not in NORMALIZATIONS:
        raise ValueError(
            f"norm must be one of {NORMALIZATIONS}. Received: norm={norm!r}")
    if not isinstance(norm_groups, int) or norm_groups < 1:
        raise ValueError(
            f"norm_groups must be a positive integer. "
            f"Received: norm_groups={norm_groups!r}")


def normalization(x, norm, *, norm_groups=32, zero_gamma=False, name):
    """Applies batch or group normalization (or nothing) to ``x``.

    Args:
        x: 4-D tensor, channels last.
        norm: None, "batch" or "group" (``tfcnn.layers.GroupNormalization``,
            Wu & He 2018).
        norm_groups: int, groups of group normalization. Defaults to 32.
        zero_gamma: bool, start the scale at zero, so that a residual branch
            begins as the identity (Goyal et al. 2017). Defaults to False.
        name: str, prefix of the layer name.

    Returns:
        the normalized tensor.
    """
    gamma = "zeros" if zero_gamma else "ones"
    if norm == "batch":
        return keras.layers.BatchNormalization(
            epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM,
            gamma_initializer=gamma, name=f"{name}_bn")(x)
    if norm == "group":
        return tfcnn_layers.GroupNormalization(
            groups=norm_groups, epsilon=1e-5, gamma_initializer=gamma,
            name=f"{name}_gn")(x)
    return x


def conv_norm_act(x, filters, kernel_size, strides=1, *, name,
                  padding="same", dilation_rate=1, groups=1, norm="batch",
                  norm_groups=32, activation="relu", use_bias=None,
                  kernel_initializer="he_normal", bias_initializer="zeros",
                  zero_gamma=False):
    """Convolution, then optional normalization, then optional activation.

    A dilation rate above 1 builds ``tfcnn.layers.DilatedConv2D`` (the layer
    the dense-prediction models are defined with); otherwise a plain
    ``keras.layers.Conv2D``.

    Args:
        x: 4-D tensor, channels last.
        filters: int, output channels.
        kernel_size: int or pair.
        strides: int or pair. Defaults to 1.
        name: str, prefix of every layer name (required: models name each
            layer after its place in the paper).
        padding: "same" or "valid". Defaults to "same".
        dilation_rate: int, spacing of the kernel taps. Defaults to 1.
        groups: int, grouped convolution (AlexNet's two towers). Defaults
            to 1.
        norm: None, "batch" or "group". Defaults to "batch".
        norm_groups: int, groups of group normalization. Defaults to 32.
        activation: str or None. Defaults to "relu".
        use_bias: bool or None; None means a bias only without
            normalization (a bias before a normalization is cancelled by it).
            Defaults to None.
        kernel_initializer: initializer. Defaults to "he_normal" (He et al.
            2015, the ReLU networks' initialization).
        bias_initializer: initializer. Defaults to "zeros".
        zero_gamma: bool, zero-initialised normalization scale. Defaults to
            False.

    Returns:
        the output tensor.
    """
    check_norm(norm, norm_groups)
    if dilation_rate != 1 and strides != 1:
        raise ValueError(
            f"a convolution is either strided or dilated, not both. "
            f"Received: strides={strides}, dilation_rate={dilation_rate}")
    if use_bias is None:
        use_bias = norm is None
    conv_kwargs = dict(
        padding=padding, use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer, name=f"{name}_conv")
    if dilation_rate != 1:
        x = tfcnn_layers.DilatedConv2D(
            filters, kernel_size, dilation_rate=dilation_rate,
            **conv_kwargs)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel_size, strides=strides,
                                groups=groups, **conv_kwargs)(x)
    x = normalization(x, norm, norm_groups=norm_groups,
                      zero_gamma=zero_gamma, name=name)
    if activation:
        x = keras.layers.Activation(activation,
                                    name=f"{name}_{activation}")(x)
    return x


def scaled(channels, width_multiplier, minimum=1):
    """Scales a channel count, keeping at least ``minimum`` channels.

    Args:
        channels: int, the paper's channel count.
        width_multiplier: float, scale factor (1.0 keeps the paper's width).
        minimum: int, lower bound. Defaults to 1.

    Returns:
        int, ``max(minimum, round(channels * width_multiplier))``.
    """
    return max(minimum, int(round(channels * width_multiplier)))
