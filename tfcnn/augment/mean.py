"""Mean subtraction with the dataset's statistics stored in the model.

AlexNet subtracts the mean image of the training set. The mean image is
computed at the host size S (256) but the layer runs after the crop (on C x
C = 224, so the crop and flip move uint8 bytes and every float op touches
23% fewer pixels); it subtracts the centre C x C of the mean image from
every crop, as Krizhevsky's cuda-convnet did (its data provider crops
``data_mean`` to the centre once and subtracts it from each random crop).
Caffe instead subtracts the mean at the crop's own offset; on real data the
mean image is smooth and the two differ by a fraction of a grey level.

The per-channel mode subtracts the channel means and divides by the channel
standard deviations (the torchvision/timm convention). The statistics are
non-trainable weights, so training, evaluation and the exported model use
the same numbers.

The modes ``"caffe"``, ``"torch"`` and ``"tf"`` give keras.applications'
``preprocess_input`` of the float32 images, bit for bit, so that a network
carrying keras.applications' weights sees exactly the inputs they were
trained on (``tfcnn.models.weights``): the Caffe models (VGG, ResNet) take
BGR images minus ImageNet's BGR channel means. ``"tf"`` calls it; the other
two do its arithmetic over rows of pixels, as ``"channel"`` does (on a CPU
4-6x faster than its broadcast over 3 channels; tests/augment compares the
two exactly). The mode is part of the layer's config,
so the exported model preprocesses the same way.
"""

import keras
import numpy as np
from keras import ops

# ImageNet per-channel statistics in [0, 255] pixel units.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

MODES = ("image", "channel", "none", "caffe", "torch", "tf", "raw")
# keras.applications' preprocess_input constants (imagenet_utils): Caffe's
# BGR channel means in pixel units, torchvision's RGB statistics in [0, 1].
_CAFFE_MEAN = np.array((103.939, 116.779, 123.68), "float32")
_TORCH_MEAN = np.array((0.485, 0.456, 0.406), "float32")
_TORCH_STD = np.array((0.229, 0.224, 0.225), "float32")


@keras.saving.register_keras_serializable(package="tfcnn")
class MeanSubtraction(keras.layers.Layer):
    """Subtracts the mean image or the channel mean; casts to compute dtype.

    * ``"image"``: ``x - centre(mean_image)`` (AlexNet); the stored mean
      image is ``mean_size x mean_size`` and its centre ``H x W`` is
      subtracted from ``H x W`` inputs.
    * ``"channel"``: ``(x - mean) / std`` with ``(C,)`` statistics.
    * ``"none"``: ``x / 255``, pixels in [0, 1].
    * ``"caffe"``, ``"torch"``, ``"tf"``: keras.applications'
      ``preprocess_input`` in that mode (caffe: RGB to BGR minus ImageNet's
      BGR means; torch: ``x / 255`` standardised with ImageNet's [0, 1]
      statistics; tf: ``x / 127.5 - 1``).
    * ``"raw"``: ``x`` as float, for the keras.applications networks
      that normalize inside (ConvNeXt, EfficientNet, MobileNetV3).

    The arithmetic is float32 whatever the policy; only the output is cast
    to the compute dtype (bfloat16 can't hold 123.675).

    Args:
        mode: str, one of ``MODES``. Defaults to ``"image"``.
        mean: array or None: ``(S, S, C)`` mean image for ``"image"``,
            ``(C,)`` channel mean for ``"channel"``, in [0, 255]. None uses
            ``IMAGENET_MEAN`` (broadcast to an image in mode ``"image"``).
            Not part of the config: the saved weights carry it.
            Defaults to None.
        std: array or None, ``(C,)`` channel std for ``"channel"``. None
            uses ``IMAGENET_STD``. Defaults to None.
        mean_size: int or None, side S of the stored mean image (mode
            ``"image"``); None: the side of ``mean``, else the input's.
            Defaults to None.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[B, H, W, C]`` images in [0, 255], any dtype, with
            ``H, W <= mean_size`` in mode ``"image"``.

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        Same as the input, in the compute dtype.
    """

    def __init__(self, mode="image", mean=None, std=None, mean_size=None,
                 **kwargs):
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
        if (mode == "image" and self.initial_mean is not None
                and mean_size is None):
            mean_size = _square_side(self.initial_mean)
        self.mean_size = mean_size

    def build(self, input_shape):
        channels = input_shape[-1]
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: channels})
        if self.mode == "image":
            self._build_mean_image(input_shape)
        elif self.mode == "channel":
            self.mean = self._stat_weight("mean", (channels,),
                                          self.initial_mean, IMAGENET_MEAN)
            self.std = self._stat_weight("std", (channels,),
                                         self.initial_std, IMAGENET_STD)

    def call(self, inputs):
        images = ops.cast(inputs, "float32")
        if self.mode == "none":
            images = images / 255.0
        elif self.mode == "raw":
            pass
        elif self.mode == "channel":
            images = _standardize(images, self.mean, self.std)
        elif self.mode == "caffe":
            # preprocess_input's arithmetic in its order, over rows.
            images = _standardize(ops.flip(images, axis=-1), _CAFFE_MEAN)
        elif self.mode == "torch":
            images = _standardize(images / 255.0, _TORCH_MEAN, _TORCH_STD)
        elif self.mode == "tf":
            images = keras.applications.imagenet_utils.preprocess_input(
                images, data_format="channels_last", mode=self.mode)
        else:
            images = images - self._centre_of_mean(ops.shape(images)[1:3])
        return ops.cast(images, self.compute_dtype)

    def _build_mean_image(self, input_shape):
        height, width = input_shape[1:3]
        if height is None or width is None:
            raise ValueError(
                "mode='image' needs a static input height and width. "
                f"Received: input_shape={input_shape}")
        if self.mean_size is None:
            if height != width:
                raise ValueError(
                    "mode='image' without mean_size needs square inputs. "
                    f"Received: input_shape={input_shape}")
            self.mean_size = height
        if max(height, width) > self.mean_size:
            raise ValueError(
                f"inputs larger than the {self.mean_size}x{self.mean_size} "
                f"mean image. Received: input_shape={input_shape}")
        shape = (self.mean_size, self.mean_size, input_shape[-1])
        self.mean = self._stat_weight("mean", shape, self.initial_mean,
                                      IMAGENET_MEAN)

    def _centre_of_mean(self, size):
        top = (self.mean_size - size[0]) // 2
        left = (self.mean_size - size[1]) // 2
        return self.mean[top:top + size[0], left:left + size[1], :]

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
        return {**super().get_config(), "mode": self.mode,
                "mean_size": self.mean_size}


def _standardize(images, mean, std=None):
    """``(images - mean) / std`` over the last axis, on each row of pixels.

    The statistics are tiled to a whole row (``W * C`` values) and the
    images seen as rows of that length: broadcast over 3 channels,
    TensorFlow's CPU kernels took 19 ms a batch of 32 at 224 (three passes
    that do not vectorise), and 4-5 ms over rows. Same numbers; XLA fuses
    either form into one pass. Subtracting is adding the negated mean, as
    keras.applications' ``preprocess_input`` does, bit for bit.
    """
    shape = ops.shape(images)
    width = shape[-2]
    rows = ops.reshape(images, (-1, width * shape[-1]))
    rows = rows - ops.tile(ops.cast(mean, "float32"), (width,))
    if std is not None:
        rows = rows / ops.tile(ops.cast(std, "float32"), (width,))
    return ops.reshape(rows, shape)


def _square_side(mean):
    if mean.ndim != 3 or mean.shape[0] != mean.shape[1]:
        raise ValueError(
            "mean must be a square (S, S, C) mean image in mode 'image'. "
            f"Received: mean.shape={mean.shape}")
    return int(mean.shape[0])
