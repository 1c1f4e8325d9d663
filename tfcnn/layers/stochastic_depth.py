"""Stochastic depth (Huang et al. 2016): residual branches dropped at random.

``StochasticDepth(rate)([shortcut, residual])`` is ``shortcut + residual``
at inference. In training, each example's residual branch is kept with
probability ``1 - rate`` and scaled by ``1 / (1 - rate)`` when kept, so the
expected output is the inference output (the paper instead scales by the
survival probability at test time; the inverted form, as in timm's
``DropPath`` and Keras' ``Dropout``, leaves inference untouched). Keras has
no such layer (keras_cv's ``StochasticDepth`` drops the whole batch's
branch at once and is not part of Keras 3).

Reference: https://arxiv.org/abs/1603.09382
"""

import keras


@keras.saving.register_keras_serializable(package="tfcnn")
class StochasticDepth(keras.layers.Layer):
    """Adds a residual branch to its shortcut, dropping it per example.

    Args:
        rate: float in [0, 1), the probability of dropping the branch.
            Defaults to 0.1.
        seed: int or None, seed of the random drops. Defaults to None.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: list ``[shortcut, residual]`` of tensors of one shape.
        training: bool, drop branches (True) or add them (False).

    Input shape:
        two tensors ``(batch, ...)`` of the same shape.

    Output shape:
        the same shape.
    """

    def __init__(self, rate=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) \
                or not 0 <= rate < 1:
            raise ValueError(
                f"rate must be a number in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        shortcut, residual = inputs
        if training and self.rate:
            keep = 1.0 - self.rate
            shape = (keras.ops.shape(residual)[0],) + (1,) * (
                len(residual.shape) - 1)
            draws = keras.random.uniform(shape, seed=self.seed_generator)
            mask = keras.ops.cast(draws < keep, residual.dtype)
            residual = residual * mask / keras.ops.cast(keep, residual.dtype)
        return shortcut + residual

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
