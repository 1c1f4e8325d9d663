"""Classifier heads shared by the model builders.

``classifier_output`` (the final activation, in float32 under mixed
precision), ``global_pool`` (the ``pooling`` option of a headless backbone,
as in ``keras.applications``) and ``fully_connected_head`` (the dense
classifier of AlexNet, Krizhevsky et al. 2012, and VGG, Simonyan &
Zisserman 2015).
"""

import keras


def classifier_output(logits, classifier_activation):
    """Applies the classifier activation in float32 (mixed-precision safe)."""
    return keras.layers.Activation(
        classifier_activation or "linear", dtype="float32",
        name="predictions")(logits)


def global_pool(x, pooling):
    """Applies optional global pooling to a headless backbone's output."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def fully_connected_head(x, num_classes, classifier_activation, *,
                         fc_units=(4096, 4096), dropout=0.5,
                         kernel_initializer="glorot_uniform",
                         bias_initializer="zeros"):
    """AlexNet's and VGG's classifier: flatten, dense layers with dropout.

    Layers are named ``flatten``, ``fc1``, ``fc1_dropout``, ..., ``logits``
    and ``predictions`` (the activation, in float32).

    Args:
        x: 4-D feature tensor.
        num_classes: int, units of the last layer.
        classifier_activation: str or None, activation of the last layer.
        fc_units: tuple of int, hidden layer widths. Defaults to
            ``(4096, 4096)``.
        dropout: float, dropout rate after each hidden layer. Defaults to
            0.5.
        kernel_initializer: initializer of the dense kernels.
        bias_initializer: initializer of the hidden layers' biases.

    Returns:
        the class probabilities (or scores).
    """
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(fc_units, start=1):
        x = keras.layers.Dense(units, activation="relu",
                               kernel_initializer=kernel_initializer,
                               bias_initializer=bias_initializer,
                               name=f"fc{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    x = keras.layers.Dense(num_classes, kernel_initializer=kernel_initializer,
                           name="logits")(x)
    return classifier_output(x, classifier_activation)
