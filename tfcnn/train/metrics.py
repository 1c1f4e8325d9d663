"""Top-1 and top-5 accuracy, named the same for every label format.

Training and validation both report ``loss``, ``accuracy`` (top-1) and
``top5_accuracy``; Keras prefixes the validation ones with ``val_``. Labels
are int class ids, or probability vectors after MixUp/CutMix (``dense``).
"""

import keras


def build_metrics(dense_labels=False):
    """The compiled metrics: top-1 and top-5 accuracy.

    Args:
        dense_labels: bool, whether labels are ``[B, K]`` probability
            vectors (MixUp/CutMix) rather than ``[B]`` class ids. Defaults
            to False.

    Returns:
        list of two ``keras.metrics.Metric``: ``accuracy`` and
        ``top5_accuracy``.
    """
    if dense_labels:
        return [keras.metrics.CategoricalAccuracy(name="accuracy"),
                keras.metrics.TopKCategoricalAccuracy(
                    k=5, name="top5_accuracy")]
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(
                k=5, name="top5_accuracy")]
