"""Mean subtraction with the dataset's statistics stored in the model.

AlexNet subtracts the mean image of the training set (Caffe crops the mean
at the same offset as the image, i.e. subtracts it before cropping, which is
what placing this layer before the crop does); the per-channel mode
subtracts the channel means and divides by the channel standard deviations
(the torchvision/timm convention). The statistics are non-trainable weights,
so training, evaluation and the exported model use the same numbers.
"""

import keras
import numpy as np
import tensorflow as tf

# ImageNet per-channel statistics in [0, 255] pixel units.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

MODES = ("image", "channel", "none")


@keras.saving.register_keras_serializable(package="tfcnn")
class MeanSubtraction(keras.layers.Layer):
    """Subtracts the mean image or the channel mean; casts to compute dtype.

    * ``"image"``: ``x - mean_image`` (AlexNet); ``mean`` is ``(H, W, C)``
      at the input size (the host size S).
    * ``"channel"``: ``(x - mean) / std`` with ``(C,)`` statistics.
    * ``"none"``: ``x / 255``, pixels in [0, 1].

    The arithmetic is float32 whatever the policy; only the output is cast
    to the compute dtype (bfloat16 can't hold 123.675).

    Args:
        mode: str, one of ``"image"``, ``"channel"``, ``"none"``.
            Defaults to ``"image"``.
        mean: array or None: ``(H, W, C)`` mean image for ``"image"``,
            ``(C,)`` channel mean for ``"channel"``, in [0, 255]. None uses
            ``IMAGENET_MEAN`` (broadcast to an image in mode ``"image"``).
            Not part of the config: the saved weights carry it.
            Defaults to None.
        std: array or None, ``(C,)`` channel std for ``"channel"``. None
            uses ``IMAGENET_STD``. Defaults to None.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[B, H, W, C]`` images in [0, 255], any dtype.

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        Same as the input, in the compute dtype.
    """

    def __init__(self, mode="image", mean=None, std=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(
                f"mode must be one of {', '.join(MODES)}. "
                f"Received: mode={mode!r}")
        self.mode = mode
        self.initial_mean = None if mean is None else np.asarray(
            mean, "float32")
        self.initial_std = None if std is None else np.asarray(
            std, "float32")
        if self.initial_std is not None and np.any(self.initial_std <= 0):
            raise ValueError(
                "std must be > 0 in every channel. Received: "
                f"std={self.initial_std.tolist()}")

    def build(self, input_shape):
        channels = input_shape[-1]
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: channels})
        if self.mode == "image":
            shape = tuple(input_shape[1:])
            if None in shape:
                raise ValueError(
                    "mode='image' needs a static input height and width. "
                    f"Received: input_shape={input_shape}")
            self.mean = self._stat_weight("mean", shape, self.initial_mean,
                                          IMAGENET_MEAN)
        elif self.mode == "channel":
            self.mean = self._stat_weight("mean", (channels,),
                                          self.initial_mean, IMAGENET_MEAN)
            self.std = self._stat_weight("std", (channels,),
                                         self.initial_std, IMAGENET_STD)

    def call(self, inputs):
        images = tf.cast(inputs, "float32")
        if self.mode == "none":
            images = images / 255.0
        else:
            images = images - tf.cast(self.mean, "float32")
            if self.mode == "channel":
                images = images / tf.cast(self.std, "float32")
        return tf.cast(images, self.compute_dtype)

    def _stat_weight(self, name, shape, value, default):
        if value is None:
            value = np.broadcast_to(np.asarray(default, "float32"), shape)
        if value.shape != shape:
            raise ValueError(
                f"{name} must have shape {shape} to match the input. "
                f"Received: {name}.shape={value.shape}")
        # autocast=False: read in float32 under a mixed policy too.
        return self.add_weight(
            name=name, shape=shape, trainable=False, dtype="float32",
            autocast=False, initializer=keras.initializers.Constant(value))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}

