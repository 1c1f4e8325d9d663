"""RandAugment that, like every tfcnn random layer, is off at inference.

``keras.layers.RandAugment.call`` defaults to ``training=True``, so a model
called without ``training`` (``model(x)``, a SavedModel signature, a
served model) would still augment. This subclass only flips that default;
the augmentation itself is Keras'. It also shares Keras' limitation under
``MirroredStrategy``: all replicas draw the same ops and magnitudes.
"""

import keras


@keras.saving.register_keras_serializable(package="tfcnn")
class RandAugment(keras.layers.RandAugment):
    """``keras.layers.RandAugment`` with ``training=False`` by default.

    Args:
        value_range: pair, the pixel range. Defaults to ``(0, 255)``.
        num_ops: int, operations per image. Defaults to 2.
        factor: float in [0, 1], the magnitude. Defaults to 0.5.
        interpolation: str. Defaults to ``"bilinear"``.
        seed: int or None. Defaults to None.
        **kwargs: base layer arguments.

    Call arguments:
        data: ``[B, H, W, C]`` images in ``value_range``.
        training: bool, augment only when True. Defaults to False.

    Reference:
        Cubuk et al., "RandAugment", https://arxiv.org/abs/1909.13719.
    """

    def call(self, data, training=False):
        return super().call(data, training=training)
