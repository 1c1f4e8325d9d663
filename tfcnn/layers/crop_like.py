"""Crops a feature map to the spatial size of another tensor.

The counterpart of ``tfcnn.layers.PadToMultiple``: scores computed on an
image padded at the bottom and right are cropped back to the image's own
height and width, which a model built for any input size only knows at run
time (``keras.layers.Cropping2D`` takes fixed margins).
"""

import keras


@keras.saving.register_keras_serializable(package="tfcnn")
class CropLike(keras.layers.Layer):
    """Keeps the top-left ``H x W`` of ``x``, ``H x W`` from ``reference``.

    Args:
        **kwargs: base layer arguments (``name``, ``dtype``).

    Call arguments:
        inputs: list ``[x, reference]``: ``x`` ``(batch, h, w, channels)``
            and ``reference`` ``(batch, H, W, any)`` with ``H <= h`` and
            ``W <= w``, channels last.

    Output shape:
        ``(batch, H, W, channels)``.

    Example:

    >>> CropLike()([np.ones((1, 64, 64, 3)), np.ones((1, 33, 64, 1))]).shape
    TensorShape([1, 33, 64, 3])
    """

    def call(self, inputs):
        x, reference = inputs
        size = keras.ops.shape(reference)
        return x[:, :size[1], :size[2], :]

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], reference_shape[2],
                x_shape[-1])
