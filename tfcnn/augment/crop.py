"""AlexNet's crop: a random square in training, the centre one at inference.

With ``random=False`` the layer takes the centre square in training too:
the Inception crop (``augment.crop = "inception"``) is cut on the host,
which places it in the centre of the host image.

``keras.layers.RandomCrop`` resizes the whole image to the crop size at
inference instead of cropping its centre, which is not what the network saw
in training nor what the AlexNet paper evaluates; hence this layer.
"""

import keras
from keras import ops

from tfcnn.augment import device_ops
from tfcnn.augment import seeding


@keras.saving.register_keras_serializable(package="tfcnn")
class RandomOrCentreCrop(keras.layers.Layer):
    """Crops ``size x size``: uniformly random in training, centred otherwise.

    In training each image gets its own offset, uniform over all
    ``(H - size + 1) * (W - size + 1)`` positions (the AlexNet paper's
    "random 224x224 patches"); at inference the centre square is kept
    (offsets ``(H - size) // 2`` and ``(W - size) // 2``). The crop only
    moves pixels, so it works on any dtype and keeps it: placed first, it
    moves uint8 bytes, 4x fewer than floats.

    Args:
        size: int, side of the square crop.
        seed: int or None, seed of the offsets. Under a distribution
            strategy each replica draws its own offsets. Defaults to None.
        random: bool, random offsets in training; False keeps the centre
            in training too (the host has cropped already). Defaults to
            True.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[B, H, W, C]`` images with ``H, W >= size``.
        training: bool, random crop when True. Defaults to False.

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        ``(batch, size, size, channels)``.

    Example:
    >>> layer = RandomOrCentreCrop(224)
    >>> layer(np.zeros((2, 256, 256, 3), "uint8")).shape
    TensorShape([2, 224, 224, 3])
    """

    def __init__(self, size=224, seed=None, random=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size <= 0:
            raise ValueError(
                f"size must be a positive int. Received: size={size!r}")
        self.size = size
        self.seed = seed
        self.random = bool(random)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "RandomOrCentreCrop expects [B, H, W, C] inputs. Received: "
                f"input_shape={input_shape}")
        for dim in input_shape[1:3]:
            if dim is not None and dim < self.size:
                raise ValueError(
                    f"input height and width must be >= size={self.size}. "
                    f"Received: input_shape={input_shape}")
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs, training=False):
        if training and self.random:
            return self._random_crop(inputs)
        return self._centre_crop(inputs)

    def _random_crop(self, images):
        batch, height, width, _ = ops.shape(images)
        limits = ops.cast(ops.stack([height, width]) - self.size + 1,
                          "float32")
        uniform = seeding.uniform(self.seed_generator, (batch, 2))
        offsets = ops.minimum(ops.cast(uniform * limits, "int32"),
                              ops.cast(limits, "int32") - 1)
        return _crop_at(images, offsets, self.size)

    def _centre_crop(self, images):
        shape = ops.shape(images)
        top = (shape[1] - self.size) // 2
        left = (shape[2] - self.size) // 2
        return images[:, top:top + self.size, left:left + self.size, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed,
                "random": self.random}


# XLA turns the two batched gathers into one copy (tfcnn.augment.device_ops).
@device_ops.xla()
def _crop_at(images, offsets, size):
    span = ops.arange(size, dtype="int32")
    rows = offsets[:, :1] + span
    cols = offsets[:, 1:] + span
    images = device_ops.batch_gather(images, rows, axis=1)
    return device_ops.batch_gather(images, cols, axis=2)
