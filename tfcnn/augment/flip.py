"""Random horizontal flip, one coin per image, distinct on each replica.

``keras.layers.RandomFlip`` does the same on one device, but under
``MirroredStrategy`` all replicas draw the same coins (its seed state is one
mirrored variable); this layer folds the replica id into the seed.
"""

import keras
from keras import ops

from tfcnn.augment import device_ops
from tfcnn.augment import seeding


@keras.saving.register_keras_serializable(package="tfcnn")
class RandomHorizontalFlip(keras.layers.Layer):
    """Mirrors each image left-right with probability ``rate`` in training.

    Identity at inference. Works on any dtype and keeps it.

    Args:
        rate: float in [0, 1], probability of a flip. Defaults to 0.5.
        seed: int or None. Defaults to None.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[B, H, W, C]`` images.
        training: bool, flip only when True. Defaults to False.

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        Same as the input.
    """

    def __init__(self, rate=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(
                f"rate must be in [0, 1]. Received: rate={rate!r}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        coins = seeding.uniform(self.seed_generator,
                                (ops.shape(inputs)[0],))
        return _flip_where(inputs, coins < self.rate)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


# XLA fuses the reverse into the select: one pass instead of TF's slow
# broadcasting select on CPU (tfcnn.augment.device_ops).
@device_ops.xla()
def _flip_where(images, flip):
    flip = ops.reshape(flip, (-1, 1, 1, 1))
    return ops.where(flip, ops.flip(images, axis=2), images)
