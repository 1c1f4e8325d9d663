"""Pads images at the bottom and right to a multiple of a model's stride.

Fully convolutional networks whose skips add feature maps of several
strides (FCN-8s adds stride 8, 16 and 32 scores, Shelhamer et al. 2015)
need input sides that are multiples of their coarsest stride. To score an
image of any size, pad it at the bottom and right and crop the scores back
(``tfcnn.layers.CropLike``): the top-left pixels keep their place, so the
crop is a slice.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfcnn")
class PadToMultiple(keras.layers.Layer):
    """Pads height and width up to the next multiple of ``multiple``.

    Pads with zeros: after mean subtraction, zero is the mean pixel.

    Args:
        multiple: int >= 1, the stride the sides must divide by. Defaults
            to 32.
        **kwargs: base layer arguments (``name``, ``dtype``).

    Input shape:
        4-D tensor ``(batch, height, width, channels)``.

    Output shape:
        4-D tensor ``(batch, ceil(height / multiple) * multiple,
        ceil(width / multiple) * multiple, channels)``.

    Example:

    >>> PadToMultiple(32)(np.ones((1, 33, 64, 3))).shape
    TensorShape([1, 64, 64, 3])
    """

    def __init__(self, multiple=32, **kwargs):
        super().__init__(**kwargs)
        if (isinstance(multiple, bool) or not isinstance(multiple, int)
                or multiple < 1):
            raise ValueError(
                "multiple must be a positive integer. "
                f"Received: multiple={multiple!r}")
        self.multiple = multiple

    def build(self, input_shape):
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        _, height, width, _ = ops.shape(inputs)
        return ops.pad(inputs, [[0, 0], [0, (-height) % self.multiple],
                                [0, (-width) % self.multiple], [0, 0]])

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape

        def padded(side):
            if side is None:
                return None
            return -(-side // self.multiple) * self.multiple

        return (batch, padded(height), padded(width), channels)

    def get_config(self):
        config = super().get_config()
        config.update(multiple=self.multiple)
        return config
