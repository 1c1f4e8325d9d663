"""``TenCropViews``: the ten test-time views of Krizhevsky et al. (2012).

"The network makes a prediction by extracting five 224x224 patches (the
four corner patches and the center patch) as well as their horizontal
reflections (hence ten patches in all)" (Krizhevsky et al. 2012, section
4.1). ``tfcnn.ten_crop`` builds the 10-crop evaluation model with it.
"""

import keras
from keras import ops

NUM_VIEWS = 10


@keras.saving.register_keras_serializable(package="tfcnn")
class TenCropViews(keras.layers.Layer):
    """Stacks the ten (or five) views of each image along the batch axis.

    Views in order: top-left, top-right, bottom-left, bottom-right, centre,
    then, with ``flip``, the same five mirrored left-right. Output row
    ``v * B + b`` is view ``v`` of image ``b``.

    Args:
        size: int, side of the square views.
        flip: bool, add the five mirror images. A model trained without
            flips (``augment.flip = false``) never saw a mirrored image,
            so its views are the five crops alone. Defaults to True.
        **kwargs: base layer arguments.

    Input shape:
        ``(B, H, W, C)`` with ``H, W >= size``.

    Output shape:
        ``(V * B, size, size, C)``, ``V`` 10 with ``flip``, else 5.
    """

    def __init__(self, size=224, flip=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size <= 0:
            raise ValueError(
                f"size must be a positive int. Received: size={size!r}")
        self.size = size
        self.flip = bool(flip)

    @property
    def num_views(self):
        return NUM_VIEWS if self.flip else NUM_VIEWS // 2

    def call(self, inputs):
        views = ten_crop_views(inputs, self.size)[:self.num_views]
        return ops.concatenate(views, axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else (
            self.num_views * input_shape[0])
        return (batch, self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size,
                "flip": self.flip}


def ten_crop_views(images, size):
    """The ten views of a batch: four corners, centre, and their mirrors.

    Args:
        images: ``[B, H, W, C]`` tensor with ``H, W >= size``.
        size: int, side of each view.

    Returns:
        list of ten ``[B, size, size, C]`` tensors.
    """
    shape = ops.shape(images)
    bottom, right = shape[1] - size, shape[2] - size
    offsets = [(0, 0), (0, right), (bottom, 0), (bottom, right),
               (bottom // 2, right // 2)]
    views = [images[:, top:top + size, left:left + size, :]
             for top, left in offsets]
    return views + [ops.flip(view, axis=2) for view in views]
