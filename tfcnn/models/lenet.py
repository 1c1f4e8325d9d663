"""LeNet-5 (LeCun et al., 1998) as taught in Dive into Deep Learning
(Zhang et al., section 7.6).

Two 5x5 convolutions (6 and 16 filters, the first padded to keep 28x28) each
followed by 2x2 average pooling, then dense layers of 120, 84 and
``num_classes`` units. LeCun et al. use the sigmoid; ``activation="relu"`` is
the modern variant that trains faster.
"""

import keras

from tfcnn.blocks import heads
from tfcnn.models import validation
from tfcnn.models.registry import register_model


@register_model("lenet5")
def lenet5(input_shape=(28, 28, 3), num_classes=10, include_top=True,
           pooling=None, classifier_activation="softmax", activation="sigmoid",
           name="lenet5"):
    """Builds LeNet-5.

    Args:
        input_shape: tuple, ``(H, W, C)``. Defaults to ``(28, 28, 3)``:
            tfcnn's input pipeline feeds RGB, grey images as three equal
            channels.
        num_classes: int, classifier units. Defaults to 10.
        include_top: bool, whether to add the dense classifier. Defaults to
            True.
        pooling: None, "avg" or "max": global pooling when ``include_top`` is
            False. Defaults to None.
        classifier_activation: str or None, activation of the last layer.
            Defaults to "softmax".
        activation: str, hidden activation. Defaults to "sigmoid" (the
            original, LeCun et al. 1998).
        name: str, model name. Defaults to "lenet5".

    Returns:
        a functional ``keras.Model``.
    """
    validation.check_common(input_shape, num_classes, pooling,
                            min_size=(5, 5))
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(6, 5, padding="same", activation=activation,
                            name="conv1")(inputs)
    x = keras.layers.AveragePooling2D(2, strides=2, name="pool1")(x)
    x = keras.layers.Conv2D(16, 5, activation=activation, name="conv2")(x)
    x = keras.layers.AveragePooling2D(2, strides=2, name="pool2")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(120, activation=activation, name="fc1")(x)
        x = keras.layers.Dense(84, activation=activation, name="fc2")(x)
        x = keras.layers.Dense(num_classes, name="logits")(x)
        x = heads.classifier_output(x, classifier_activation)
    else:
        x = heads.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name)
