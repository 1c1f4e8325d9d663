"""GoogLeNet, Inception v1 (Szegedy et al., 2015), as in the paper's Table 1.

conv 7x7/2 (64) -> max-pool 3x3/2 -> LRN -> conv 1x1 (64) -> conv 3x3 (192)
-> LRN -> max-pool -> inception 3a, 3b -> max-pool -> 4a ... 4e -> max-pool
-> 5a, 5b -> global average pooling -> dropout 0.4 -> linear -> softmax.

``inception="reduced"`` (default) is the paper's network, with 1x1 dimension
reductions; ``inception="naive"`` builds the same table with the naive
module of the paper's Figure 2(a) (no reductions, the pooled branch passes
every channel on), which shows why the reductions were introduced: the
widths grow from module to module and so do the parameters.

With ``aux_classifiers=True`` the model has three outputs, the main
classifier and the two auxiliary ones after 4a and 4d (5x5/3 average
pooling, 1x1 convolution with 128 filters, 1,024-unit dense layer, dropout
0.7, linear); the paper adds their losses with weight 0.3 during training
and drops them at inference.

The paper's "params" column counts kernel weights (no biases) in units of
1,024: inception 3a 159K ... 5b 1388K; the tests check every module.

Reference: https://arxiv.org/abs/1409.4842
"""

import keras

from tfcnn import layers as tfcnn_layers
from tfcnn.blocks import heads
from tfcnn.blocks.conv_norm_act import conv_norm_act
from tfcnn.blocks.conv_norm_act import scaled
from tfcnn.blocks.inception import InceptionSpec
from tfcnn.blocks.inception import inception_module
from tfcnn.models import validation
from tfcnn.models.registry import register_model

# The paper's Table 1, in order; None marks a 3x3/2 max-pooling.
GOOGLENET_SPEC = (
    ("3a", InceptionSpec(64, 96, 128, 16, 32, 32)),
    ("3b", InceptionSpec(128, 128, 192, 32, 96, 64)),
    ("pool3", None),
    ("4a", InceptionSpec(192, 96, 208, 16, 48, 64)),
    ("4b", InceptionSpec(160, 112, 224, 24, 64, 64)),
    ("4c", InceptionSpec(128, 128, 256, 24, 64, 64)),
    ("4d", InceptionSpec(112, 144, 288, 32, 64, 64)),
    ("4e", InceptionSpec(256, 160, 320, 32, 128, 128)),
    ("pool4", None),
    ("5a", InceptionSpec(256, 160, 320, 32, 128, 128)),
    ("5b", InceptionSpec(384, 192, 384, 48, 128, 128)),
)
AUX_AFTER = ("4a", "4d")
NORMALIZATIONS = ("lrn", "batch", None)


def _norm_layer(x, norm, name):
    # The paper's LRN sits after pool1 and after conv2; BN-Inception
    # normalizes every convolution instead (see ``conv_norm``).
    if norm == "lrn":
        # Caffe's GoogLeNet: local_size 5, alpha 1e-4 over the window mean,
        # beta 0.75, k 1.
        return tfcnn_layers.LocalResponseNormalization(
            size=5, bias=1.0, alpha=1e-4, beta=0.75,
            alpha_convention="mean", name=name)(x)
    return x


def _aux_classifier(x, num_classes, classifier_activation, width_multiplier,
                    name):
    x = keras.layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = conv_norm_act(x, scaled(128, width_multiplier), 1, norm=None,
                      kernel_initializer="glorot_uniform",
                      name=f"{name}_conv")
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(scaled(1024, width_multiplier), activation="relu",
                           name=f"{name}_fc")(x)
    x = keras.layers.Dropout(0.7, name=f"{name}_dropout")(x)
    x = keras.layers.Dense(num_classes, name=f"{name}_logits")(x)
    return keras.layers.Activation(classifier_activation or "linear",
                                   dtype="float32",
                                   name=f"{name}_predictions")(x)


def _scale_spec(spec, width_multiplier):
    return InceptionSpec(*(scaled(c, width_multiplier) for c in spec))


@register_model("googlenet")
def googlenet(input_shape=(224, 224, 3), num_classes=1000, include_top=True,
              pooling=None, classifier_activation="softmax",
              name="googlenet", inception="reduced", norm="lrn",
              aux_classifiers=False, dropout=0.4, width_multiplier=1.0):
    """Builds GoogLeNet (Inception v1).

    Args:
        input_shape: tuple ``(H, W, C)``, at least 32x32 (80x80 with
            ``aux_classifiers``). Defaults to ``(224, 224, 3)``.
        num_classes: int, classifier units. Defaults to 1000.
        include_top: bool, add the pooling, dropout and classifier.
            Defaults to True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, activation of the last layer
            (and of the auxiliary ones), computed in float32. Defaults to
            "softmax".
        name: str, model name. Defaults to "googlenet".
        inception: "reduced" (the paper's network) or "naive" (the module
            without 1x1 reductions). Defaults to "reduced".
        norm: "lrn" (the paper), "batch" (batch norm after every
            convolution, as BN-Inception) or None; the option ResNets and
            VGG call norm too. Defaults to "lrn".
        aux_classifiers: bool, add the two auxiliary classifiers as extra
            outputs ``[main, aux1, aux2]``. Defaults to False.
        dropout: float, dropout before the classifier. Defaults to 0.4.
        width_multiplier: float, scales every layer's filters. Defaults to
            1.0.

    Returns:
        a functional ``keras.Model``; three outputs with
        ``aux_classifiers``.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = googlenet(input_shape=(32, 32, 3), num_classes=10,
    ...                   width_multiplier=0.125)
    """
    validation.check_common(input_shape, num_classes, pooling)
    validation.check_choice("inception", inception, ("reduced", "naive"))
    validation.check_choice("norm", norm, NORMALIZATIONS)
    validation.check_dropout(dropout)
    validation.check_positive("width_multiplier", width_multiplier)
    aux = aux_classifiers and include_top
    if aux and (None in input_shape[:2] or min(input_shape[:2]) < 80):
        raise ValueError(
            "aux_classifiers need a defined input of at least 80x80 (their "
            "5x5 pooling runs at stride 16). "
            f"Received: input_shape={input_shape}")
    conv_norm = "batch" if norm == "batch" else None

    def conv(x, filters, kernel_size, strides, layer_name):
        return conv_norm_act(x, scaled(filters, width_multiplier),
                             kernel_size, strides, norm=conv_norm,
                             kernel_initializer="glorot_uniform",
                             name=layer_name)

    def max_pool(x, layer_name):
        return keras.layers.MaxPooling2D(3, strides=2, padding="same",
                                         name=layer_name)(x)

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv(inputs, 64, 7, 2, "conv1")
    x = max_pool(x, "pool1")
    x = _norm_layer(x, norm, "pool1_norm")
    x = conv(x, 64, 1, 1, "conv2_reduce")
    x = conv(x, 192, 3, 1, "conv2")
    x = _norm_layer(x, norm, "conv2_norm")
    x = max_pool(x, "pool2")
    aux_outputs = []
    for module, spec in GOOGLENET_SPEC:
        if spec is None:
            x = max_pool(x, module)
            continue
        x = inception_module(x, _scale_spec(spec, width_multiplier),
                             reduce=inception == "reduced", norm=conv_norm,
                             name=f"inception_{module}")
        if aux and module in AUX_AFTER:
            aux_outputs.append(_aux_classifier(
                x, num_classes, classifier_activation, width_multiplier,
                name=f"aux{len(aux_outputs) + 1}"))
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(num_classes, name="logits")(x)
        x = heads.classifier_output(x, classifier_activation)
    else:
        x = heads.global_pool(x, pooling)
    outputs = [x, *aux_outputs] if aux_outputs else x
    return keras.Model(inputs, outputs, name=name)
