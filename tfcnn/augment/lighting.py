"""AlexNet's PCA colour augmentation ("lighting").

Krizhevsky et al. (2012), section 4.1: to each training image add
``[p1, p2, p3] [a1 l1, a2 l2, a3 l3]^T`` where ``p_i`` and ``l_i`` are the
eigenvectors and eigenvalues of the 3x3 RGB covariance of the training
pixels and ``a_i ~ N(0, stddev^2)`` is drawn once per image per epoch.

The formula only makes sense with pixels in [0, 1] (with pixels in
[0, 255] the eigenvalues are ~255^2 times larger than the pixel values they
are added to), so, like fb.resnet.torch, the eigenvalues here are those of
pixels scaled to [0, 1], and the shift is multiplied by ``value_scale`` (255)
because the layer works on [0, 255] pixels.
"""

import keras
import numpy as np
from keras import ops

from tfcnn.augment import device_ops
from tfcnn.augment import seeding

# ImageNet's RGB PCA for pixels in [0, 1], as used since fb.resnet.torch
# (datasets/imagenet.lua); eigenvectors are the columns.
IMAGENET_EIGENVALUES = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGENVECTORS = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


@keras.saving.register_keras_serializable(package="tfcnn")
class PCALighting(keras.layers.Layer):
    """Adds ``value_scale * P (a * l)`` to every pixel, ``a ~ N(0, s^2)``.

    One draw of ``a`` (three numbers) per image, so the whole image shifts
    along the principal colour axes. Identity at inference (only the cast
    to the compute dtype). The eigenvalues and eigenvectors are
    non-trainable weights, so a saved model carries them.

    Args:
        stddev: float >= 0, standard deviation of the coefficients ``a``
            (AlexNet: 0.1). Defaults to 0.1.
        eigenvalues: 3 floats, eigenvalues of the RGB covariance of pixels
            in [0, 1]. Defaults to ``IMAGENET_EIGENVALUES``.
        eigenvectors: 3x3 floats, the eigenvectors as columns.
            Defaults to ``IMAGENET_EIGENVECTORS``.
        value_scale: float, pixel value of white: 255 for [0, 255] inputs.
            Defaults to 255.0.
        seed: int or None. Under a distribution strategy each replica
            draws its own coefficients. Defaults to None.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[B, H, W, 3]`` images in [0, value_scale], any dtype.
        training: bool, add the shift only when True. Defaults to False.

    Input shape:
        ``(batch, height, width, 3)``.

    Output shape:
        Same as the input, in the compute dtype.

    Reference:
        Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep
        Convolutional Neural Networks", NeurIPS 2012.
    """

    def __init__(self, stddev=0.1, eigenvalues=IMAGENET_EIGENVALUES,
                 eigenvectors=IMAGENET_EIGENVECTORS, value_scale=255.0,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if stddev < 0:
            raise ValueError(
                f"stddev must be >= 0. Received: stddev={stddev!r}")
        eigenvalues = np.asarray(eigenvalues, dtype="float32")
        eigenvectors = np.asarray(eigenvectors, dtype="float32")
        if eigenvalues.shape != (3,):
            raise ValueError(
                "eigenvalues must hold 3 numbers. Received: "
                f"eigenvalues={eigenvalues.tolist()}")
        if eigenvectors.shape != (3, 3):
            raise ValueError(
                "eigenvectors must be a 3x3 matrix. Received: "
                f"eigenvectors={eigenvectors.tolist()}")
        self.stddev = float(stddev)
        self.initial_eigenvalues = eigenvalues
        self.initial_eigenvectors = eigenvectors
        self.value_scale = float(value_scale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if input_shape[-1] != 3:
            raise ValueError(
                "PCALighting needs RGB inputs with 3 channels. Received: "
                f"input_shape={input_shape}")
        self.eigenvalues = self.add_weight(
            name="eigenvalues", shape=(3,), trainable=False,
            initializer=keras.initializers.Constant(
                self.initial_eigenvalues),
            dtype="float32", autocast=False)
        self.eigenvectors = self.add_weight(
            name="eigenvectors", shape=(3, 3), trainable=False,
            initializer=keras.initializers.Constant(
                self.initial_eigenvectors),
            dtype="float32", autocast=False)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: 3})

    def call(self, inputs, training=False):
        if training and self.stddev > 0:
            shift = self._colour_shift(ops.shape(inputs)[0])
            return _add_shift(inputs, shift, self.compute_dtype)
        return ops.cast(inputs, self.compute_dtype)

    def _colour_shift(self, batch):
        alpha = seeding.normal(self.seed_generator, (batch, 3),
                               stddev=self.stddev)
        weights = alpha * ops.cast(self.eigenvalues, "float32")
        # rgb[b, c] = sum_i P[c, i] * a[b, i] * l[i]
        rgb = ops.matmul(weights, ops.transpose(
            ops.cast(self.eigenvectors, "float32")))
        return self.value_scale * rgb

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "stddev": self.stddev,
            "eigenvalues": self.initial_eigenvalues.tolist(),
            "eigenvectors": self.initial_eigenvectors.tolist(),
            "value_scale": self.value_scale,
            "seed": self.seed,
        }


# XLA fuses cast, per-image add and cast back into one pass (TF's CPU
# kernel for a [B, 1, 1, 3] broadcast is ~8x slower;
# tfcnn.augment.device_ops).
@device_ops.xla()
def _add_shift(images, shift, dtype):
    images = ops.cast(images, "float32") + shift[:, None, None, :]
    return ops.cast(images, dtype)
