"""``ZeroPadShortcut``: the parameter-free shortcut of He et al. (2016).

Option A of "Deep Residual Learning for Image Recognition": where a
residual block changes the tensor's shape, the shortcut is the identity
subsampled by the stride, with the extra channels zero-padded.
``tfcnn.blocks.residual`` uses it for ``shortcut="A"``.

Reference: https://arxiv.org/abs/1512.03385
"""

import keras


@keras.saving.register_keras_serializable(package="tfcnn")
class ZeroPadShortcut(keras.layers.Layer):
    """Option A shortcut: subsample by ``strides`` and zero-pad channels.

    ``keras.layers.ZeroPadding*`` pads spatial axes only and a ``Lambda``
    does not survive safe deserialization, hence this small layer. It has
    no weights.

    Args:
        channels: int, output channels (at least the input's).
        strides: int, spatial subsampling (every ``strides``-th pixel, as
            a 1x1 convolution with that stride would see). Defaults to 1.
        **kwargs: base layer arguments (``name``, ``dtype``).

    Input shape:
        4-D tensor ``(batch, height, width, in_channels)``.

    Output shape:
        4-D tensor ``(batch, ceil(height / strides), ceil(width / strides),
        channels)``.
    """

    def __init__(self, channels, strides=1, **kwargs):
        super().__init__(**kwargs)
        for argument, value in (("channels", channels), ("strides", strides)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(
                    f"{argument} must be a positive integer. "
                    f"Received: {argument}={value!r}")
        self.channels = channels
        self.strides = strides

    def build(self, input_shape):
        if input_shape[-1] is None or input_shape[-1] > self.channels:
            raise ValueError(
                f"ZeroPadShortcut needs at most channels={self.channels} "
                f"input channels. Received: input_shape={input_shape}")
        self.input_spec = keras.layers.InputSpec(ndim=4,
                                                 axes={-1: input_shape[-1]})

    def call(self, inputs):
        x = inputs[:, ::self.strides, ::self.strides, :]
        extra = self.channels - inputs.shape[-1]
        if extra:
            x = keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape

        def subsample(size):
            return None if size is None else -(-size // self.strides)

        return (batch, subsample(height), subsample(width), self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, strides=self.strides)
        return config
