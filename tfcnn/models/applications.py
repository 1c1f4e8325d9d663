"""keras.applications' image classifiers as tfcnn models, by name.

Keras maintains the modern backbones with their ImageNet weights; tfcnn
builds them with Keras' own constructors (never a copy of their code) and
puts them under tfcnn's contract: the registry's signature, an ``image``
input, any number of classes, a float32 ``predictions`` activation (mixed
precision safe), and the weights matched by layer name and shape
(``tfcnn.models.weights``). Registered names (``APPLICATIONS``):

* ``convnext_tiny`` ... ``convnext_xlarge`` (Liu et al. 2022),
* ``efficientnet_b0`` ... ``efficientnet_b7`` (Tan & Le 2019),
* ``efficientnetv2_b0`` ... ``_b3``, ``_s``, ``_m``, ``_l`` (Tan & Le 2021),
* ``mobilenet``, ``mobilenet_v2``, ``mobilenet_v3_small``,
  ``mobilenet_v3_large`` (Howard et al. 2017, 2019; Sandler et al. 2018),
* ``keras_resnet50/101/152`` (keras.applications' ResNet V1, whose
  convolutions have biases; tfcnn's own ``resnet50`` ... have none and are
  registered under the plain names), ``resnet50v2/101v2/152v2`` (He et al.
  2016, identity mappings),
* ``densenet121/169/201`` (Huang et al. 2017), ``xception`` (Chollet 2017),
  ``inception_v3`` (Szegedy et al. 2016), ``inception_resnet_v2`` (Szegedy
  et al. 2017), ``nasnet_mobile`` and ``nasnet_large`` (Zoph et al. 2018).

Keras 3 has no RegNet (Radosavovic et al. 2020; tf.keras 2.9 to 2.15 had
RegNetX and RegNetY, Keras 3 did not carry them over), so there is none
here, and a ``regnet...`` name is refused saying so.

Each entry records the family's ``preprocess_input`` mode, which
``augment.mean = "auto"`` follows (``tfcnn.models.weights.resolve_mean``):
"caffe", "torch" or "tf" for the networks that expect preprocessed
inputs, and "raw" (pixels as they are, 0 to 255) for ConvNeXt,
EfficientNet and MobileNetV3, which normalize inside the network (their
``preprocess_input`` is a pass-through). The classifier is Keras' own top
(EfficientNet's dropout, ConvNeXt's layer norm, MobileNetV3's last 1x1
convolutions), built with ``classifier_activation=None``; a Keras
classifier called ``predictions`` is renamed ``logits``, the name tfcnn's
classifiers carry and ``tfcnn.models.weights`` maps back to Keras' name
(MobileNetV3's linear ``predictions`` activation becomes
``keras_predictions``).
"""

import dataclasses

import keras

from tfcnn.blocks import heads
from tfcnn.models import validation
from tfcnn.models.registry import register_absent
from tfcnn.models.registry import register_variant


@dataclasses.dataclass(frozen=True)
class Application:
    """One keras.applications classifier.

    Attributes:
        constructor: str, the name in ``keras.applications``.
        mode: str, its ``preprocess_input`` mode (a ``MeanMode`` value).
        size: int, the input side its ImageNet weights were trained at.
        min_size: int, the smallest input side Keras accepts.
    """

    constructor: str
    mode: str
    size: int = 224
    min_size: int = 32


def _table():
    table = {}
    for suffix in ("tiny", "small", "base", "large", "xlarge"):
        table[f"convnext_{suffix}"] = Application(
            f"ConvNeXt{suffix.capitalize().replace('large', 'Large')}",
            "raw")
    for index, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600)):
        table[f"efficientnet_b{index}"] = Application(
            f"EfficientNetB{index}", "raw", size)
    for suffix, size in (("b0", 224), ("b1", 240), ("b2", 260), ("b3", 300),
                         ("s", 384), ("m", 480), ("l", 480)):
        table[f"efficientnetv2_{suffix}"] = Application(
            f"EfficientNetV2{suffix.upper()}", "raw", size)
    table["mobilenet"] = Application("MobileNet", "tf")
    table["mobilenet_v2"] = Application("MobileNetV2", "tf")
    table["mobilenet_v3_small"] = Application("MobileNetV3Small", "raw")
    table["mobilenet_v3_large"] = Application("MobileNetV3Large", "raw")
    for depth in (50, 101, 152):
        table[f"keras_resnet{depth}"] = Application(f"ResNet{depth}",
                                                    "caffe")
        table[f"resnet{depth}v2"] = Application(f"ResNet{depth}V2", "tf")
    for depth in (121, 169, 201):
        table[f"densenet{depth}"] = Application(f"DenseNet{depth}", "torch")
    table["xception"] = Application("Xception", "tf", 299, 71)
    table["inception_v3"] = Application("InceptionV3", "tf", 299, 75)
    table["inception_resnet_v2"] = Application("InceptionResNetV2", "tf",
                                               299, 75)
    table["nasnet_mobile"] = Application("NASNetMobile", "tf")
    table["nasnet_large"] = Application("NASNetLarge", "tf", 331)
    return table


APPLICATIONS = _table()


def _feature_table():
    """Layers of strides 4, 8 and 16 by name, per network (the stride 32
    features are the backbone's output). Each is the last layer at its
    stride before the network halves the resolution, named by Keras (the
    same layers keras-io's DeepLabV3+ and segmentation libraries tap;
    ``"<layer>:input"``: that layer's input);
    MobileNetV3, Inception, Inception-ResNet and NASNet leave these layers
    to Keras' counters, so they have no entry."""
    table = {}
    for suffix in ("tiny", "small", "base", "large", "xlarge"):
        name = f"convnext_{suffix}"
        # Its stages end in unnamed additions: the input of the next
        # stage's downsampling is each stage's output.
        table[name] = tuple(f"{name}_downsampling_block_{index}:input"
                            for index in range(3))
    for index in range(8):
        table[f"efficientnet_b{index}"] = (
            "block3a_expand_activation", "block4a_expand_activation",
            "block6a_expand_activation")
    for suffix, last in (("b0", "b"), ("b1", "c"), ("b2", "c"), ("b3", "c"),
                         ("s", "d"), ("m", "e"), ("l", "g")):
        table[f"efficientnetv2_{suffix}"] = (
            f"block2{last}_add", "block4a_expand_activation",
            "block6a_expand_activation")
    table["mobilenet"] = ("conv_pw_3_relu", "conv_pw_5_relu",
                          "conv_pw_11_relu")
    table["mobilenet_v2"] = ("block_3_expand_relu", "block_6_expand_relu",
                             "block_13_expand_relu")
    for depth, (third, fourth) in ((50, (4, 6)), (101, (4, 23)),
                                   (152, (8, 36))):
        table[f"keras_resnet{depth}"] = (
            "conv2_block3_out", f"conv3_block{third}_out",
            f"conv4_block{fourth}_out")
        # V2 strides at the last block of a stage, not the first.
        table[f"resnet{depth}v2"] = (
            "conv2_block2_out", f"conv3_block{third - 1}_out",
            f"conv4_block{fourth - 1}_out")
    for depth in (121, 169, 201):
        table[f"densenet{depth}"] = ("pool2_conv", "pool3_conv",
                                     "pool4_conv")
    table["xception"] = ("block3_sepconv1_act", "block4_sepconv1_act",
                         "block13_sepconv1_act")
    return table


FEATURE_LAYERS = _feature_table()


def keras_application(constructor, input_shape=None, num_classes=1000,
                      include_top=True, pooling=None,
                      classifier_activation="softmax", name=None):
    """Builds a keras.applications classifier under tfcnn's contract.

    Args:
        constructor: str, a key of ``APPLICATIONS`` (the registered name).
        input_shape: tuple ``(H, W, C)``, at least the family's
            ``min_size``. Defaults to the size of its ImageNet weights.
        num_classes: int, classifier units. Defaults to 1000.
        include_top: bool, Keras' classifier (with ``num_classes`` units)
            and the float32 activation. Defaults to True.
        pooling: None, "avg" or "max", global pooling when ``include_top``
            is False. Defaults to None.
        classifier_activation: str or None, activation of the output,
            computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to the registered name.

    Returns:
        a functional ``keras.Model`` whose layers are Keras' own (not a
        nested model), so layer names serve ``model.weights_until``,
        ``train.trainable = "from:<layer>"`` and the weights' matching.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = keras_application("mobilenet_v3_small",
    ...                           input_shape=(32, 32, 3), num_classes=3)
    """
    application = APPLICATIONS[constructor]
    if input_shape is None:
        input_shape = (application.size, application.size, 3)
    input_shape = tuple(input_shape)
    validation.check_common(input_shape, num_classes, pooling,
                            min_size=(application.min_size,) * 2)
    inputs = keras.Input(shape=input_shape, name="image")
    builder = getattr(keras.applications, application.constructor)
    kwargs = dict(include_top=include_top, weights=None,
                  input_tensor=inputs, pooling=None if include_top
                  else pooling)
    if include_top:
        kwargs.update(classes=num_classes, classifier_activation=None)
    backbone = builder(**kwargs)
    x = backbone.output
    if include_top:
        for layer in backbone.layers:
            if layer.name == "predictions":
                # MobileNetV3's is a linear activation after its "logits".
                layer.name = "logits" if layer.weights else "keras_predictions"
        x = heads.classifier_output(x, classifier_activation)
    return keras.Model(inputs, x, name=name or constructor)


def application_features(inputs, name):
    """A keras.applications backbone's features at strides 4 to 32.

    Args:
        inputs: the model's image input (``keras.Input``).
        name: str, a key of ``FEATURE_LAYERS``.

    Returns:
        dict from stride (4, 8, 16, 32) to feature tensors.

    Raises:
        ValueError: a network without a feature table.
    """
    validation.check_choice("backbone", name, tuple(FEATURE_LAYERS))
    application = APPLICATIONS[name]
    backbone = getattr(keras.applications, application.constructor)(
        include_top=False, weights=None, input_tensor=inputs)
    endpoints = {}
    for stride, layer in zip((4, 8, 16), FEATURE_LAYERS[name]):
        layer, _, port = layer.partition(":")
        layer = backbone.get_layer(layer)
        endpoints[stride] = layer.input if port else layer.output
    endpoints[32] = backbone.output
    return endpoints


def preprocessing_mode(name):
    """The ``preprocess_input`` mode of a registered application, or None.

    Args:
        name: str, a registered model name.

    Returns:
        str (a ``MeanMode`` value) or None for tfcnn's own models.
    """
    application = APPLICATIONS.get(name)
    return application.mode if application else None


def _register():
    for name in APPLICATIONS:
        globals()[name] = register_variant(
            name, keras_application, fixed={"constructor": name})
    register_absent(
        "regnet", f"Keras {keras.__version__}'s keras.applications has no "
        "RegNet (tf.keras 2.9 to 2.15 had RegNetX and RegNetY)")


_register()
