"""``TenCropViews``: the ten test-time views of Krizhevsky et al. (2012).

"The network makes a prediction by extracting five 224x224 patches (the
four corner patches and the center patch) as well as their horizontal
reflections (hence ten patches in all)" (Krizhevsky et al. 2012, section
4.1). ``tfcnn.train.ten_crop`` builds the 10-crop evaluation model with it.
"""

import keras
import tensorflow as tf

NUM_VIEWS = 10


@keras.saving.register_keras_serializable(package="tfcnn")
class TenCropViews(keras.layers.Layer):
    """Stacks the ten views of each image along the batch axis.

    Views in order: top-left, top-right, bottom-left, bottom-right, centre,
    then the same five mirrored left-right. Output row ``v * B + b`` is view
    ``v`` of image ``b``.

    Args:
        size: int, side of the square views.
        **kwargs: base layer arguments.

    Input shape:
        ``(B, H, W, C)`` with ``H, W >= size``.

    Output shape:
        ``(10 * B, size, size, C)``.
    """

    def __init__(self, size=224, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size <= 0:
            raise ValueError(
                f"size must be a positive int. Received: size={size!r}")
        self.size = size

    def call(self, inputs):
        return tf.concat(ten_crop_views(inputs, self.size), axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else NUM_VIEWS * input_shape[0]
        return (batch, self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def ten_crop_views(images, size):
    """The ten views of a batch: four corners, centre, and their mirrors.

    Args:
        images: ``[B, H, W, C]`` tensor with ``H, W >= size``.
        size: int, side of each view.

    Returns:
        list of ten ``[B, size, size, C]`` tensors.
    """
    shape = tf.shape(images)
    bottom, right = shape[1] - size, shape[2] - size
    offsets = [(0, 0), (0, right), (bottom, 0), (bottom, right),
               (bottom // 2, right // 2)]
    views = [images[:, top:top + size, left:left + size, :]
             for top, left in offsets]
    return views + [tf.reverse(view, axis=[2]) for view in views]
