"""DeepLab-v3 (Chen et al. 2017): atrous spatial pyramid pooling on a ResNet.

The ResNet's last stages trade their strides for dilation
(``output_stride`` 16 or 8, ``tfcnn.models.resnet.resnet_features``), so
the features stay at 1/16 or 1/8 of the input while the receptive fields
stay those of the classifier. Atrous spatial pyramid pooling
(``tfcnn.blocks.aspp``: a 1x1 branch, 3x3 branches dilated by 6, 12 and
18, and image pooling; rates doubled at output stride 8, as in the paper)
gathers context at several scales; a 1x1 convolution (``logits``) scores
each position and bilinear resizing (``upsample``, a
``tfcnn.layers.ResizeLike``) returns the scores to the input's own size, so
the model takes inputs of any size.

Registered as "deeplabv3_resnet18" and "deeplabv3_resnet50".

Reference: https://arxiv.org/abs/1706.05587
"""

import keras

from tfcnn.blocks import heads
from tfcnn.blocks.aspp import RATES
from tfcnn.blocks.aspp import atrous_spatial_pyramid_pooling
from tfcnn.layers.resize_like import ResizeLike
from tfcnn.models import validation
from tfcnn.models.registry import SEGMENTATION
from tfcnn.models.registry import register_variant
from tfcnn.models.resnet import check_resnet_options
from tfcnn.models.resnet import resnet_features

OUTPUT_STRIDES = (8, 16)


def deeplabv3(depth, input_shape=(None, None, 3), num_classes=21,
              include_top=True, pooling=None, classifier_activation="softmax",
              name=None, output_stride=16, atrous_rates=None,
              aspp_filters=256, dropout=0.1, shortcut="B", norm="batch",
              norm_groups=32, width_multiplier=1.0):
    """Builds DeepLab-v3 on a ResNet ("deeplabv3_resnet50", ...).

    Args:
        depth: int, 18, 34, 50, 101 or 152.
        input_shape: tuple ``(H, W, C)``, any size of at least 32x32.
            Defaults to ``(None, None, 3)``.
        num_classes: int, classes scored per pixel. Defaults to 21 (PASCAL
            VOC, as the paper).
        include_top: bool, add ASPP, the scores and the upsampling; without
            them the model returns the backbone's features at
            ``output_stride``. Defaults to True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, per-pixel activation of the
            output, computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "deeplabv3_resnet{depth}".
        output_stride: int, 16 or 8: the stride of the features ASPP sees.
            Defaults to 16.
        atrous_rates: tuple of ints or None: ASPP's dilation rates. None:
            (6, 12, 18) at output stride 16, (12, 24, 36) at 8. Defaults
            to None.
        aspp_filters: int, channels of the ASPP branches. Defaults to 256.
        dropout: float, dropout after ASPP's projection. Defaults to 0.1.
        shortcut, norm, norm_groups, width_multiplier: the ResNet's, as in
            ``tfcnn.models.resnet.resnet`` (``norm`` also for ASPP).

    Returns:
        a functional ``keras.Model`` with per-pixel class scores
        ``(batch, H, W, num_classes)``.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = deeplabv3(18, num_classes=3, width_multiplier=0.125,
    ...                   aspp_filters=8)
    """
    validation.check_common(input_shape, num_classes, pooling)
    validation.check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    check_resnet_options(depth, shortcut=shortcut, norm=norm,
                         norm_groups=norm_groups,
                         width_multiplier=width_multiplier,
                         output_stride=output_stride)
    validation.check_positive("aspp_filters", aspp_filters, int)
    validation.check_dropout(dropout)
    if atrous_rates is None:
        atrous_rates = tuple(rate * 16 // output_stride for rate in RATES)
    inputs = keras.Input(shape=input_shape, name="image")
    x = resnet_features(
        inputs, depth, shortcut=shortcut, norm=norm, norm_groups=norm_groups,
        width_multiplier=width_multiplier,
        output_stride=output_stride)[output_stride]
    if include_top:
        x = atrous_spatial_pyramid_pooling(
            x, aspp_filters, rates=tuple(atrous_rates), norm=norm,
            norm_groups=norm_groups, dropout=dropout, name="aspp")
        x = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
        x = ResizeLike(name="upsample")([x, inputs])
        x = heads.classifier_output(x, classifier_activation)
    else:
        x = heads.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name or f"deeplabv3_resnet{depth}")


deeplabv3_resnet18 = register_variant("deeplabv3_resnet18", deeplabv3,
                                      fixed={"depth": 18},
                                      task=SEGMENTATION)
deeplabv3_resnet50 = register_variant("deeplabv3_resnet50", deeplabv3,
                                      fixed={"depth": 50},
                                      task=SEGMENTATION)
