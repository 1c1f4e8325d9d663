"""The training losses: cross-entropy per image and per pixel.

``CrossEntropy`` classifies images (with label smoothing);
``PixelCrossEntropy`` classifies pixels and leaves void pixels out.

Labels reach the loss either as int class ids ``[B]`` (the pipeline's
contract) or as ``[B, K]`` probability vectors (after MixUp/CutMix). Sparse
labels with label smoothing are turned into one-hot vectors on the device,
inside the step, so the host never ships ``B x K`` floats.
"""

import keras

from tfcnn.label_values import IGNORE_VALUE


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


@keras.saving.register_keras_serializable(package="tfcnn")
class PixelCrossEntropy(keras.losses.Loss):
    """Per-pixel cross-entropy that leaves void pixels out entirely.

    The loss of a batch is ``sum_p w[y_p] * -log(q_p[y_p]) / sum_p w[y_p]``
    over the pixels ``p`` whose label ``y_p`` is not ``ignore_class``: void
    pixels count in neither the sum nor the count (Shelhamer et al. 2015
    and DeepLab ignore Pascal VOC's 255 the same way), and with class
    weights it is their weighted mean (PyTorch's ``CrossEntropyLoss`` with
    ``weight=`` and ``ignore_index=``).

    Under a distribution strategy the count is the GLOBAL count of valid
    pixels (all-reduced over the replicas), and the loss is reduced by
    "sum" without Keras' division by the number of replicas: each replica
    returns its pixels' share ``local_sum / global_count``, so the summed
    gradients are those of the global mean whatever share of void pixels
    each replica got. With one replica it is the plain mean.

    Args:
        ignore_class: int or None, the label of void pixels. Defaults to
            255.
        class_weights: sequence of K floats or None, the weight of each
            class's pixels (e.g. median-frequency balancing, Eigen & Fergus
            2015). Defaults to None (all 1).
        name: str. Defaults to "pixel_cross_entropy".
        dtype: loss dtype. Defaults to None (float32).

    Call arguments:
        y_true: int labels ``[B, H, W]`` (or ``[B, H, W, 1]``).
        y_pred: probabilities ``[B, H, W, K]``.
    """

    def __init__(self, ignore_class=IGNORE_VALUE, class_weights=None,
                 name="pixel_cross_entropy", dtype=None):
        super().__init__(name=name, reduction="sum", dtype=dtype)
        self.ignore_class = None if ignore_class is None else int(
            ignore_class)
        self.class_weights = (None if class_weights is None
                              else [float(w) for w in class_weights])
        if self.class_weights is not None and any(
                w < 0 for w in self.class_weights):
            raise ValueError(
                "class_weights must be non-negative. Received: "
                f"class_weights={self.class_weights}")

    def call(self, y_true, y_pred):
        import tensorflow as tf

        y_pred = keras.ops.cast(y_pred, "float32")
        labels = keras.ops.cast(y_true, "int32")
        if len(labels.shape) == len(y_pred.shape):
            labels = keras.ops.squeeze(labels, -1)
        if self.ignore_class is None:
            valid = keras.ops.ones_like(labels, dtype="bool")
        else:
            valid = keras.ops.not_equal(labels, self.ignore_class)
        safe = keras.ops.where(valid, labels, 0)
        weight = keras.ops.cast(valid, "float32")
        if self.class_weights is not None:
            weight = weight * keras.ops.take(
                keras.ops.convert_to_tensor(self.class_weights, "float32"),
                safe)
        pixel_loss = keras.losses.sparse_categorical_crossentropy(
            safe, y_pred)
        total = keras.ops.sum(pixel_loss * weight)
        count = keras.ops.sum(weight)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Each replica returns its share of the global mean: Keras sums
            # the replicas' gradients, and its loss tracker multiplies each
            # value by the replica count before averaging them.
            count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        return keras.ops.divide_no_nan(total, keras.ops.stop_gradient(count))

    def get_config(self):
        config = super().get_config()
        config.pop("reduction", None)
        config.update(ignore_class=self.ignore_class,
                      class_weights=self.class_weights)
        return config
