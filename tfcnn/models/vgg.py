"""VGG-11/13/16/19 (Simonyan & Zisserman, 2014), configurations A, B, D, E.

Five blocks of 3x3 convolutions (stride 1, "same" padding, ReLU), each
followed by 2x2 max-pooling with stride 2, then two fully connected layers
of 4096 units with dropout 0.5 and a ``num_classes`` classifier. At 224x224
with 1,000 classes VGG-16 has 138,357,544 parameters and VGG-19 143,667,240;
the per-layer weight counts are those of the cs231n course notes' table.

``vgg_features`` is the convolutional part alone; it returns its endpoints
keyed by stride, which the FCN taps for its skip connections, and with
``output_stride=8`` it becomes the dilated front end of Yu & Koltun (the
last two poolings removed, later convolutions dilated instead).

Reference: https://arxiv.org/abs/1409.1556
"""

import keras

from tfcnn.blocks import heads
from tfcnn.blocks.conv_norm_act import conv_norm_act
from tfcnn.blocks.conv_norm_act import scaled
from tfcnn.models import validation
from tfcnn.models.registry import register_variant

# Convolutions per block for each depth (the paper's Table 1, columns
# A, B, D and E); the blocks have 64, 128, 256, 512 and 512 filters.
VGG_SPECS = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
BLOCK_FILTERS = (64, 128, 256, 512, 512)
OUTPUT_STRIDES = (8, 16, 32)

# Normalization after each convolution: none (the paper) or batch norm.
NORMS = (None, "batch")


def vgg_features(x, depth, *, width_multiplier=1.0, norm=None,
                 output_stride=32):
    """The convolutional blocks of VGG.

    Args:
        x: 4-D image tensor, channels last.
        depth: int, a key of ``VGG_SPECS`` (11, 13, 16 or 19).
        width_multiplier: float, scales every block's filters. Defaults to
            1.0.
        norm: None (the paper) or "batch": batch norm after each
            convolution (the later "VGG-BN" variant). Defaults to None.
        output_stride: 8, 16 or 32. Below 32 the last poolings are dropped
            and the convolutions after them dilated by the stride they lost
            (Yu & Koltun 2016). Defaults to 32.

    Returns:
        dict from stride (2, 4, ..., output_stride) to the last tensor at
        that stride; ``block{i}_pool`` layers produce the pooled ones.
    """
    endpoints = {}
    stride, dilation = 1, 1
    validation.check_choice("norm", norm, NORMS)
    for block, (convs, filters) in enumerate(
            zip(VGG_SPECS[depth], BLOCK_FILTERS), start=1):
        for conv in range(1, convs + 1):
            x = conv_norm_act(
                x, scaled(filters, width_multiplier), 3, norm=norm,
                dilation_rate=dilation, kernel_initializer="glorot_uniform",
                name=f"block{block}_conv{conv}")
        if stride < output_stride:
            x = keras.layers.MaxPooling2D(2, strides=2,
                                          name=f"block{block}_pool")(x)
            stride *= 2
        else:
            dilation *= 2
        endpoints[stride] = x
    return endpoints


def check_vgg_options(width_multiplier, output_stride):
    """Validates the options shared by VGG and the models built on it.

    Raises:
        ValueError: naming the argument and the received value.
    """
    validation.check_positive("width_multiplier", width_multiplier)
    validation.check_choice("output_stride", output_stride, OUTPUT_STRIDES)


def vgg(depth, input_shape=(224, 224, 3), num_classes=1000, include_top=True,
        pooling=None, classifier_activation="softmax", name=None,
        norm=None, width_multiplier=1.0, fc_units=4096, dropout=0.5):
    """Builds VGG (registered as "vgg11", "vgg13", "vgg16" and "vgg19").

    Args:
        depth: int, 11, 13, 16 or 19 (configurations A, B, D, E).
        input_shape: tuple ``(H, W, C)``, at least 32x32. Defaults to
            ``(224, 224, 3)``.
        num_classes: int, classifier units. Defaults to 1000.
        include_top: bool, add the fully connected classifier. Defaults to
            True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, activation of the last layer,
            computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "vgg{depth}".
        norm: None (the paper) or "batch": batch norm after every
            convolution, the option ResNets and GoogLeNet call norm too.
            Defaults to None.
        width_multiplier: float, scales the convolution filters. Defaults
            to 1.0.
        fc_units: int, width of the two hidden dense layers. Defaults to
            4096.
        dropout: float, dropout after each hidden dense layer. Defaults to
            0.5.

    Returns:
        a functional ``keras.Model``.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = vgg(16, input_shape=(32, 32, 3), num_classes=10,
    ...             width_multiplier=0.125, fc_units=64)
    """
    validation.check_choice("depth", depth, tuple(VGG_SPECS))
    validation.check_common(input_shape, num_classes, pooling)
    check_vgg_options(width_multiplier, 32)
    validation.check_fully_connected(fc_units, dropout)
    inputs = keras.Input(shape=input_shape, name="image")
    x = vgg_features(inputs, depth, width_multiplier=width_multiplier,
                     norm=norm)[32]
    if include_top:
        x = heads.fully_connected_head(
            x, num_classes, classifier_activation,
            fc_units=(fc_units, fc_units), dropout=dropout)
    else:
        x = heads.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name or f"vgg{depth}")


vgg11 = register_variant("vgg11", vgg, fixed={"depth": 11})
vgg13 = register_variant("vgg13", vgg, fixed={"depth": 13})
vgg16 = register_variant("vgg16", vgg, fixed={"depth": 16})
vgg19 = register_variant("vgg19", vgg, fixed={"depth": 19})
