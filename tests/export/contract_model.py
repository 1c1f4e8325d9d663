"""Tiny models that follow the training-model contract, for export tests.

uint8 ``[B, 32, 32, 3]`` input named "image" -> centre crop to 24 -> mean
subtraction (non-trainable statistics) -> a small conv net -> softmax.
``favour`` biases one class so strongly that it is always the top one:
two versions exported with different ``favour`` answer differently.
"""

import keras
import numpy as np

SIZE = 32
CROP = 24
CLASS_NAMES = ["ant", "bee", "cat"]


def build(favour=None, seed=0, num_classes=3):
    """Returns a compiled-free functional model following the contract."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), dtype="uint8", name="image")
    x = keras.layers.CenterCrop(CROP, CROP, name="centre_crop")(inputs)
    x = keras.layers.Normalization(
        mean=[124.0, 116.0, 104.0], variance=[3364.0, 3249.0, 3316.0],
        name="mean")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax",
                                 dtype="float32", name="probs")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    if favour is not None:
        kernel, bias = model.get_layer("probs").get_weights()
        bias = np.zeros_like(bias)
        bias[favour] = 20.0
        model.get_layer("probs").set_weights([kernel * 0.01, bias])
    return model


def encoded_images(count=2, seed=0, fmt="png"):
    """Returns ``count`` encoded random images of different sizes."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    encode = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
    return [encode(rng.integers(0, 256, (SIZE + 7 * i, SIZE + 3, 3),
                                dtype=np.uint8)).numpy()
            for i in range(count)]
