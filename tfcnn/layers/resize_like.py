"""Resizes a feature map to the spatial size of another tensor.

Dense-prediction heads end at a coarser stride than their input and must
return one score per input pixel, whatever the input's size: DeepLab
(Chen et al. 2017) upsamples its logits bilinearly to the image and
broadcasts the image-pooling branch of atrous spatial pyramid pooling back
to the feature map's size. ``keras.layers.UpSampling2D`` and
``keras.layers.Resizing`` need the factor or the size when the model is
built; this layer reads it from a reference tensor at run time, so one
model takes inputs of any size.
"""

import keras
from keras import ops

INTERPOLATIONS = ("bilinear", "nearest")


@keras.saving.register_keras_serializable(package="tfcnn")
class ResizeLike(keras.layers.Layer):
    """Resizes ``x`` to the height and width of ``reference``.

    A 1x1 ``x`` is broadcast (bilinear resizing of one pixel repeats it),
    which is how DeepLab-v3's image-level features join the other ASPP
    branches.

    Args:
        interpolation: str, "bilinear" or "nearest". Defaults to
            "bilinear".
        **kwargs: base layer arguments (``name``, ``dtype``).

    Call arguments:
        inputs: list ``[x, reference]``: ``x`` ``(batch, h, w, channels)``
            and ``reference`` ``(batch, H, W, any)``, channels last.

    Output shape:
        ``(batch, H, W, channels)`` in ``x``'s dtype.

    Example:

    >>> layer = ResizeLike()
    >>> layer([np.ones((1, 2, 2, 3)), np.ones((1, 8, 6, 1))]).shape
    TensorShape([1, 8, 6, 3])
    """

    def __init__(self, interpolation="bilinear", **kwargs):
        super().__init__(**kwargs)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {INTERPOLATIONS}. "
                f"Received: interpolation={interpolation!r}")
        self.interpolation = interpolation

    def call(self, inputs):
        x, reference = inputs
        size = tuple(ops.shape(reference)[1:3])
        # Resize in float32 (tf.image.resize always does; the other
        # backends keep the input's dtype), then back to the compute dtype
        # of the layer's input (mixed precision).
        resized = ops.image.resize(
            ops.cast(x, "float32"), size, interpolation=self.interpolation,
            data_format="channels_last")
        return ops.cast(resized, x.dtype)

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], reference_shape[2],
                x_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(interpolation=self.interpolation)
        return config
