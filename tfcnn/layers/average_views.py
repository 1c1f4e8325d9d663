"""``AverageViews``: the mean prediction over several views of each image.

The averaging step of 10-crop testing (Krizhevsky et al. 2012, section
4.1), after ``TenCropViews`` stacked the views along the batch axis.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfcnn")
class AverageViews(keras.layers.Layer):
    """Averages ``[V * B, K]`` predictions over the ``V`` views of each image.

    Args:
        num_views: int, the views per image. Defaults to 10.
        **kwargs: base layer arguments.

    Input shape:
        ``(V * B, K)``, view-major as ``TenCropViews`` stacks them.

    Output shape:
        ``(B, K)``.
    """

    def __init__(self, num_views=10, **kwargs):
        super().__init__(**kwargs)
        self.num_views = num_views

    def call(self, inputs):
        views = ops.reshape(inputs, (self.num_views, -1, inputs.shape[-1]))
        return ops.mean(views, axis=0)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0]
        if batch is not None:
            batch //= self.num_views
        return (batch, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_views": self.num_views}
