"""Metrics: top-1/top-5 accuracy of images, pixel accuracy and IoU of pixels.

Training and validation both report ``loss``, ``accuracy`` (top-1) and
``top5_accuracy``; Keras prefixes the validation ones with ``val_``. Labels
are int class ids, or probability vectors after MixUp/CutMix (``dense``).
Semantic segmentation reports ``pixel_accuracy`` and ``mean_iou`` over the
pixels that are not void.
"""

import keras

from tfcnn.label_values import IGNORE_VALUE

TOP_K = 5


def has_top_k(num_classes):
    """Whether top-5 accuracy says anything: with 5 classes or fewer every
    class is in the top 5 and it is always 1."""
    return num_classes is None or num_classes > TOP_K


def build_metrics(dense_labels=False, num_classes=None):
    """The compiled metrics: top-1 and (with more than 5 classes) top-5
    accuracy.

    Args:
        dense_labels: bool, whether labels are ``[B, K]`` probability
            vectors (MixUp/CutMix) rather than ``[B]`` class ids. Defaults
            to False.
        num_classes: int or None, K; top-5 only where 5 < K. Defaults to
            None (top-5 included).

    Returns:
        list of ``keras.metrics.Metric``: ``accuracy`` and, where it
        applies, ``top5_accuracy``.
    """
    top_k = has_top_k(num_classes)
    if dense_labels:
        return [keras.metrics.CategoricalAccuracy(name="accuracy"),
                *([keras.metrics.TopKCategoricalAccuracy(
                    k=TOP_K, name="top5_accuracy")] if top_k else [])]
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            *([keras.metrics.SparseTopKCategoricalAccuracy(
                k=TOP_K, name="top5_accuracy")] if top_k else [])]


def build_segmentation_metrics(num_classes, ignore_class=IGNORE_VALUE):
    """The compiled metrics of semantic segmentation.

    Both accumulate one confusion matrix of the pixels whose label is not
    ``ignore_class`` (a metric variable summed over the replicas, so they
    hold under every strategy).

    Args:
        num_classes: int, K.
        ignore_class: int or None, the label of void pixels. Defaults to
            255.

    Returns:
        list: ``pixel_accuracy`` (``PixelAccuracy``) and ``mean_iou``
        (``keras.metrics.MeanIoU``: the mean over the classes present in
        the labels or the predictions of ``TP / (TP + FP + FN)``).
    """
    return [PixelAccuracy(num_classes, ignore_class=ignore_class),
            keras.metrics.MeanIoU(num_classes, ignore_class=ignore_class,
                                  sparse_y_pred=False, name="mean_iou")]


@keras.saving.register_keras_serializable(package="tfcnn")
class PixelAccuracy(keras.metrics.MeanIoU):
    """The fraction of non-void pixels whose arg-max class is their label.

    ``keras.metrics.SparseCategoricalAccuracy`` counts void pixels; this
    metric reads the confusion matrix ``MeanIoU`` accumulates (void pixels
    left out), so accuracy and IoU come from the same counts.

    Args:
        num_classes: int, K.
        ignore_class: int or None, the label of void pixels. Defaults to
            255.
        name: str. Defaults to "pixel_accuracy".
        dtype: metric dtype. Defaults to None.
    """

    def __init__(self, num_classes, ignore_class=IGNORE_VALUE,
                 name="pixel_accuracy", dtype=None):
        super().__init__(num_classes, ignore_class=ignore_class,
                         sparse_y_pred=False, name=name, dtype=dtype)

    def result(self):
        matrix = keras.ops.cast(self.total_cm, "float32")
        return keras.ops.divide_no_nan(keras.ops.trace(matrix),
                                       keras.ops.sum(matrix))

    def get_config(self):
        return {"num_classes": self.num_classes,
                "ignore_class": self.ignore_class, "name": self.name,
                "dtype": self.dtype}


def per_class_iou(confusion):
    """IoU of each class from a confusion matrix (rows: labels).

    Args:
        confusion: array ``[K, K]``, pixels of label i predicted as j.

    Returns:
        list of K floats or None: ``TP / (TP + FP + FN)``, None for a class
        neither labelled nor predicted (its IoU is undefined; ``MeanIoU``
        leaves it out of the mean as well).
    """
    import numpy as np

    confusion = np.asarray(confusion, dtype=np.float64)
    true_positives = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - true_positives
    return [float(tp / u) if u else None
            for tp, u in zip(true_positives, union)]
