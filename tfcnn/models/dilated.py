"""The dilated network for dense prediction of Yu & Koltun (2016).

The *front end* is VGG-16 adapted for dense prediction: the last two
max-poolings are removed and every later convolution is dilated by the
stride it lost (conv5 by 2, fc6 by 4), so the features keep stride 8 while
the receptive fields stay those of the classifier. fc6 (7x7, 4,096
filters) and fc7 (1x1, 4,096) are convolutions and a 1x1 convolution
``score`` gives ``num_classes`` maps. The *context module*
(``tfcnn.blocks.context.context_module``: 3x3 convolutions dilated by 1, 1,
2, 4, 8, 16, 1 and a final 1x1, all with ``num_classes`` channels, the
paper's "basic" module) aggregates multi-scale context without losing
resolution. Bilinear upsampling by 8 (``upsample``) returns per-pixel
class scores at the input resolution; Yu & Koltun upsample the same way.

This is the paper's "Dilation8" network. Every dilated convolution is a
``tfcnn.layers.DilatedConv2D``. Every convolution pads "same", so inputs
whose sides are multiples of 8 give outputs of exactly their size (the
paper reflect-pads its input instead).

Reference: https://arxiv.org/abs/1511.07122
"""

import keras

from tfcnn.blocks import heads
from tfcnn.blocks.context import context_module
from tfcnn.models import validation
from tfcnn.models.fcn import fully_convolutional_head
from tfcnn.models.registry import SEGMENTATION
from tfcnn.models.registry import register_model
from tfcnn.models.vgg import check_vgg_options
from tfcnn.models.vgg import vgg_features

OUTPUT_STRIDE = 8
CONTEXT_RATES = (1, 1, 2, 4, 8, 16, 1)


@register_model("dilation8", task=SEGMENTATION)
def dilation8(input_shape=(None, None, 3), num_classes=21, include_top=True,
              pooling=None, classifier_activation="softmax",
              name="dilation8", context=True, context_rates=CONTEXT_RATES,
              width_multiplier=1.0, fc_units=4096, dropout=0.5):
    """Builds the dilated front end plus context module (Dilation8).

    Args:
        input_shape: tuple ``(H, W, C)``; H and W None or multiples of 8,
            at least 32. Defaults to ``(None, None, 3)`` (any size).
        num_classes: int, classes scored per pixel. Defaults to 21 (PASCAL
            VOC, as the paper).
        include_top: bool, add the scoring, context and upsampling layers;
            without them the model returns fc7's features at stride 8.
            Defaults to True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, per-pixel activation of the
            output, computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "dilation8".
        context: bool, add the context module (False: the front end
            alone). Defaults to True.
        context_rates: tuple of int, dilation rates of the context
            module's 3x3 layers. Defaults to ``(1, 1, 2, 4, 8, 16, 1)``.
        width_multiplier: float, scales the VGG-16 filters. Defaults to
            1.0.
        fc_units: int, filters of fc6 and fc7. Defaults to 4096.
        dropout: float, dropout after fc6 and fc7. Defaults to 0.5.

    Returns:
        a functional ``keras.Model`` with per-pixel class scores
        ``(batch, H, W, num_classes)``.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = dilation8(input_shape=(64, 64, 3), num_classes=3,
    ...                   width_multiplier=0.125, fc_units=32)
    """
    validation.check_dense_prediction(input_shape, num_classes, pooling,
                                      OUTPUT_STRIDE)
    check_vgg_options(width_multiplier, OUTPUT_STRIDE)
    validation.check_fully_connected(fc_units, dropout)
    inputs = keras.Input(shape=input_shape, name="image")
    x = vgg_features(inputs, 16, width_multiplier=width_multiplier,
                     output_stride=OUTPUT_STRIDE)[OUTPUT_STRIDE]
    x = fully_convolutional_head(x, fc_units=fc_units, dropout=dropout,
                                 dilation_rate=32 // OUTPUT_STRIDE)
    if include_top:
        x = keras.layers.Conv2D(num_classes, 1, name="score")(x)
        if context:
            x = context_module(x, num_classes, rates=tuple(context_rates),
                               name="context")
        x = keras.layers.UpSampling2D(OUTPUT_STRIDE, interpolation="bilinear",
                                      name="upsample")(x)
        x = heads.classifier_output(x, classifier_activation)
    else:
        x = heads.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name)
