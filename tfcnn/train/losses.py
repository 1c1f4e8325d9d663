"""The training loss: cross-entropy on probabilities, with label smoothing.

Labels reach the loss either as int class ids ``[B]`` (the pipeline's
contract) or as ``[B, K]`` probability vectors (after MixUp/CutMix). Sparse
labels with label smoothing are turned into one-hot vectors on the device,
inside the step, so the host never ships ``B x K`` floats.
"""

import keras


@keras.saving.register_keras_serializable(package="tfcnn")
class CrossEntropy(keras.losses.Loss):
    """Cross-entropy for sparse or dense labels, with label smoothing.

    Keras' ``SparseCategoricalCrossentropy`` has no label smoothing and its
    ``CategoricalCrossentropy`` needs one-hot labels; this loss takes either.

    Args:
        label_smoothing: float in [0, 1): the target is
            ``(1 - s) * onehot + s / K`` (Szegedy et al. 2016). Defaults
            to 0.
        from_logits: bool, whether predictions are logits. Defaults to False
            (the training model ends in a float32 softmax).
        name: str. Defaults to "cross_entropy".
        reduction: str, Keras loss reduction. Defaults to
            "sum_over_batch_size".
    """

    def __init__(self, label_smoothing=0.0, from_logits=False,
                 name="cross_entropy", reduction="sum_over_batch_size",
                 dtype=None):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                "label_smoothing must be in [0, 1). Received: "
                f"label_smoothing={label_smoothing}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_pred = keras.ops.cast(y_pred, "float32")
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = keras.ops.squeeze(y_true, -1)
        if len(y_true.shape) < len(y_pred.shape):
            if not self.label_smoothing:
                return keras.losses.sparse_categorical_crossentropy(
                    y_true, y_pred, from_logits=self.from_logits)
            y_true = keras.ops.one_hot(keras.ops.cast(y_true, "int32"),
                                       keras.ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(
            keras.ops.cast(y_true, "float32"), y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing)

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing,
                      from_logits=self.from_logits)
        return config
