"""1-D convolutional networks for sequences: time series and text.

A 1-D convolution slides its kernel along one axis only (time, or the
position in a text) and sums over all the channels at each step, the same
operation as the 2-D one with one spatial axis fewer.

* "cnn1d", for time series ``(steps, channels)``: the fully convolutional
  baseline of Wang, Yan & Oates (2017), three convolutions (128 filters of
  8, 256 of 5, 128 of 3) each with batch norm and ReLU, then global average
  pooling over time and the classifier.
* "textcnn", for token ids ``(length,)``: Kim (2014), an embedding, parallel
  convolutions of widths 3, 4 and 5 (100 filters each) with ReLU, max over
  time, concatenation, dropout 0.5 and the classifier.

References: https://arxiv.org/abs/1611.06455, https://arxiv.org/abs/1408.5882
"""

import keras

from tfcnn.blocks import heads
from tfcnn.blocks.conv_norm_act import scaled
from tfcnn.models import validation
from tfcnn.models.registry import register_model


def _check_sequence_shape(input_shape, ndim, min_length):
    if len(input_shape) != ndim:
        form = "(steps, channels)" if ndim == 2 else "(length,)"
        raise ValueError(
            f"input_shape must be {form}. Received: input_shape={input_shape}")
    if input_shape[0] is not None and input_shape[0] < min_length:
        raise ValueError(
            f"input_shape must have at least {min_length} steps. "
            f"Received: input_shape={input_shape}")


def _check_kernels(filters, kernel_sizes):
    for argument, values in (("filters", filters),
                             ("kernel_sizes", kernel_sizes)):
        if not values:
            raise ValueError(
                f"{argument} must not be empty. Received: {argument}={values}")
        for value in values:
            validation.check_positive(argument, value, int)


def _pool_over_time(x, pooling, name):
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling1D(name=name)(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling1D(name=name)(x)
    return x


def _classifier(x, num_classes, classifier_activation):
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return heads.classifier_output(x, classifier_activation)


@register_model("cnn1d")
def cnn1d(input_shape=(128, 1), num_classes=2, include_top=True,
          pooling=None, classifier_activation="softmax", name="cnn1d",
          filters=(128, 256, 128), kernel_sizes=(8, 5, 3),
          width_multiplier=1.0):
    """Builds the 1-D fully convolutional time-series classifier.

    Args:
        input_shape: tuple ``(steps, channels)``; steps may be None.
            Defaults to ``(128, 1)``.
        num_classes: int, classifier units. Defaults to 2.
        include_top: bool, add global average pooling and the classifier.
            Defaults to True.
        pooling: None, "avg" or "max", pooling over time when
            ``include_top`` is False. Defaults to None.
        classifier_activation: str or None, activation of the last layer,
            computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "cnn1d".
        filters: tuple of int, filters of each convolution. Defaults to
            ``(128, 256, 128)``.
        kernel_sizes: tuple of int, kernel width of each convolution, one
            per entry of ``filters``. Defaults to ``(8, 5, 3)``.
        width_multiplier: float, scales every convolution's filters.
            Defaults to 1.0.

    Returns:
        a functional ``keras.Model``.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = cnn1d(input_shape=(32, 3), num_classes=4)
    """
    _check_sequence_shape(input_shape, 2, 1)
    validation.check_common((1, 1, 1), num_classes, pooling, min_size=(1, 1))
    _check_kernels(filters, kernel_sizes)
    if len(filters) != len(kernel_sizes):
        raise ValueError(
            f"filters and kernel_sizes must have the same length. "
            f"Received: filters={filters}, kernel_sizes={kernel_sizes}")
    validation.check_positive("width_multiplier", width_multiplier)
    inputs = keras.Input(shape=input_shape, name="sequence")
    x = inputs
    for index, (width, kernel) in enumerate(zip(filters, kernel_sizes),
                                            start=1):
        x = keras.layers.Conv1D(scaled(width, width_multiplier), kernel,
                                padding="same", use_bias=False,
                                kernel_initializer="he_normal",
                                name=f"conv{index}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"conv{index}_bn")(x)
        x = keras.layers.Activation("relu", name=f"conv{index}_relu")(x)
    if include_top:
        x = _pool_over_time(x, "avg", "avg_pool")
        x = _classifier(x, num_classes, classifier_activation)
    else:
        x = _pool_over_time(x, pooling, f"{pooling}_pool")
    return keras.Model(inputs, x, name=name)


@register_model("textcnn")
def textcnn(input_shape=(256,), num_classes=2, include_top=True,
            pooling=None, classifier_activation="softmax", name="textcnn",
            vocab_size=20000, embedding_dim=128, filters=100,
            kernel_sizes=(3, 4, 5), dropout=0.5):
    """Builds Kim's convolutional sentence classifier.

    Token id 0 is padding (the embedding has ``vocab_size`` rows, ids from
    0 to ``vocab_size - 1``).

    Args:
        input_shape: tuple ``(length,)`` of int token ids; length may be
            None but not shorter than the widest kernel. Defaults to
            ``(256,)``.
        num_classes: int, classifier units. Defaults to 2.
        include_top: bool, add dropout and the classifier; without them the
            model returns the pooled features. Defaults to True.
        pooling: None, "avg" or "max", the pooling over time; None is
            Kim's max. Defaults to None.
        classifier_activation: str or None, activation of the last layer,
            computed in float32. Defaults to "softmax".
        name: str, model name. Defaults to "textcnn".
        vocab_size: int, rows of the embedding. Defaults to 20000.
        embedding_dim: int, embedding width. Defaults to 128 (Kim: 300).
        filters: int, filters per kernel width. Defaults to 100.
        kernel_sizes: tuple of int, the parallel kernel widths. Defaults
            to ``(3, 4, 5)``.
        dropout: float, dropout before the classifier. Defaults to 0.5.

    Returns:
        a functional ``keras.Model``.

    Raises:
        ValueError: a bad argument, named in the message.

    Example:

    >>> model = textcnn(input_shape=(16,), vocab_size=100, embedding_dim=8,
    ...                 filters=4)
    """
    _check_kernels((filters,), kernel_sizes)
    _check_sequence_shape(input_shape, 1, max(kernel_sizes))
    validation.check_common((1, 1, 1), num_classes, pooling, min_size=(1, 1))
    validation.check_positive("vocab_size", vocab_size, int)
    validation.check_positive("embedding_dim", embedding_dim, int)
    validation.check_dropout(dropout)
    inputs = keras.Input(shape=input_shape, dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(
        inputs)
    branches = []
    for kernel in kernel_sizes:
        branch = keras.layers.Conv1D(filters, kernel, activation="relu",
                                     name=f"conv{kernel}")(x)
        branches.append(_pool_over_time(branch, pooling or "max",
                                        f"conv{kernel}_pool"))
    x = branches[0]
    if len(branches) > 1:
        x = keras.layers.Concatenate(name="concat")(branches)
    if include_top:
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = _classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, x, name=name)
