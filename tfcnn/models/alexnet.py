"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), two-tower and single-tower.

Five convolutions and three fully connected layers, ReLU everywhere:

=====  ================================  ==============================
layer  paper                             here
=====  ================================  ==============================
conv1  96 11x11/4, LRN, max-pool 3/2     ``conv1_*``, ``conv1_lrn``,
                                         ``pool1``
conv2  256 5x5, 2 groups, LRN, pool 3/2  ``conv2_*`` (``groups=2``),
                                         ``conv2_lrn``, ``pool2``
conv3  384 3x3, across both towers       ``conv3_*``
conv4  384 3x3, 2 groups                 ``conv4_*``
conv5  256 3x3, 2 groups, pool 3/2       ``conv5_*``, ``pool5``
fc6-8  4096, 4096, num_classes,          ``fc1``, ``fc2`` (dropout 0.5
       dropout 0.5 in the first two      each), ``logits``
=====  ================================  ==============================

``towers=2`` is the paper's network: the two-GPU split is a grouped
convolution (``Conv2D(groups=2)``) wherever a layer sees only its own GPU's
maps (conv2, conv4, conv5), 60,965,224 parameters at 1,000 classes.
``towers=1`` connects every layer to all maps of the previous one
(62,378,344 parameters). One deviation from the paper: in the two-tower
network the LRN of conv1 and conv2 runs across all 96 / 256 channels, where
the paper's ran within each GPU's half; the windows differ only for the four
channels next to the split, and LRN has no weights.

The 227 convention: the paper says 224x224 inputs, but an 11x11 kernel at
stride 4 gives the 55x55 maps of its figure only from 227x227 ((227 - 11) / 4
+ 1 = 55). The model therefore zero-pads its input on the bottom and right
to the next size of the form 4k + 11 (``conv1_pad``: 224 -> 227; a 227 input
is not padded), so both 224 and 227 inputs give 55x55 after conv1 and 6x6
before the classifier.

Reference: https://papers.nips.cc/paper/4824
"""

import keras

from tfcnn import layers as tfcnn_layers
from tfcnn.blocks import heads
from tfcnn.blocks.conv_norm_act import conv_norm_act
from tfcnn.blocks.conv_norm_act import scaled
from tfcnn.models import validation
from tfcnn.models.registry import register_model
from tfcnn.models.registry import register_variant

# (filters, kernel, stride, grouped in the two-tower net, LRN, max-pool).
ALEXNET_SPEC = (
    (96, 11, 4, False, True, True),
    (256, 5, 1, True, True, True),
    (384, 3, 1, False, False, False),
    (384, 3, 1, True, False, False),
    (256, 3, 1, True, False, True),
)
# The smallest input that leaves pool5 a map of at least 1x1.
MIN_INPUT = 67


def conv1_padding(size):
    """Bottom/right zero padding that makes conv1 (11x11/4) cover ``size``.

    Args:
        size: int or None, input height or width.

    Returns:
        int, padding to the next size ``4 k + 11`` (3 for 224, 0 for 227).
    """
    return 0 if size is None else (-(size - 11)) % 4


@register_model("alexnet")
def alexnet(input_shape=(224, 224, 3), num_classes=1000, include_top=True,
            pooling=None, classifier_activation="softmax", name="alexnet",
            towers=2, width_multiplier=1.0, fc_units=4096, dropout=0.5,
            paper_init=False):
    """Builds AlexNet (registered as "alexnet" and "alexnet_one_tower").

    Args:
        input_shape: tuple ``(H, W, C)``, at least 67x67. Defaults to
            ``(224, 224, 3)``, padded to 227 inside the model.
        num_classes: int, classifier units. Defaults to 1000.
        include_top: bool, add the fully connected classifier. Defaults to
            True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, activation of the last layer,
            computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "alexnet".
        towers: 2 (the paper's two-GPU network, grouped conv2, conv4 and
            conv5) or 1. Defaults to 2.
        width_multiplier: float, scales the convolution filters (kept even
            for the two towers). Defaults to 1.0.
        fc_units: int, width of fc1 and fc2. Defaults to 4096.
        dropout: float, dropout after fc1 and fc2. Defaults to 0.5.
        paper_init: bool, the paper's initialization: weights from
            N(0, 0.01), biases 1 in conv2, conv4, conv5 and the hidden
            dense layers and 0 elsewhere. Defaults to False (Glorot
            uniform, zero biases, which trains without the paper's
            learning-rate schedule).

    Returns:
        a functional ``keras.Model``.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = alexnet(input_shape=(67, 67, 3), num_classes=10,
    ...                 width_multiplier=0.0625, fc_units=32)
    """
    validation.check_common(input_shape, num_classes, pooling,
                            min_size=(MIN_INPUT, MIN_INPUT))
    validation.check_choice("towers", towers, (1, 2))
    validation.check_positive("width_multiplier", width_multiplier)
    validation.check_fully_connected(fc_units, dropout)
    if paper_init:
        kernel_init = keras.initializers.RandomNormal(stddev=0.01)
    else:
        kernel_init = "glorot_uniform"
    inputs = keras.Input(shape=input_shape, name="image")
    pads = [conv1_padding(size) for size in input_shape[:2]]
    x = inputs
    if any(pads):
        x = keras.layers.ZeroPadding2D(((0, pads[0]), (0, pads[1])),
                                       name="conv1_pad")(x)
    for index, (filters, kernel, stride, grouped, lrn, pool) in enumerate(
            ALEXNET_SPEC, start=1):
        groups = towers if grouped else 1
        x = conv_norm_act(
            x, scaled(filters, width_multiplier / towers) * towers, kernel,
            stride, padding="valid" if index == 1 else "same",
            groups=groups, norm=None, kernel_initializer=kernel_init,
            bias_initializer="ones" if paper_init and grouped else "zeros",
            name=f"conv{index}")
        if lrn:
            x = tfcnn_layers.LocalResponseNormalization(
                name=f"conv{index}_lrn")(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2,
                                          name=f"pool{index}")(x)
    if include_top:
        x = heads.fully_connected_head(
            x, num_classes, classifier_activation,
            fc_units=(fc_units, fc_units), dropout=dropout,
            kernel_initializer=kernel_init,
            bias_initializer="ones" if paper_init else "zeros")
    else:
        x = heads.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name)


alexnet_one_tower = register_variant("alexnet_one_tower", alexnet,
                                     defaults={"towers": 1})
