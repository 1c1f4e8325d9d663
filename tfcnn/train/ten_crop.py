"""10-crop evaluation, as the AlexNet paper reports it.

"At test time, the network makes a prediction by extracting five 224x224
patches (the four corner patches and the center patch) as well as their
horizontal reflections (hence ten patches in all), and averaging the
predictions made by the network's softmax layer on the ten patches"
(Krizhevsky et al. 2012, section 4.1).

The training model (``tfcnn.augment`` layers, then the network) takes the
uint8 ``S x S`` image and centre-crops it itself, so it can't be fed crops.
``ten_crop_model`` rebuilds it around the crop: the layers before the crop
(lighting, off at inference, and mean subtraction at ``S x S``) run once,
``TenCropViews`` cuts the ten views and stacks them along the batch, the
layers after the crop (the network) run on all ten, and ``AverageViews``
averages the ten softmax outputs. The result is an ordinary Keras model
from uint8 ``[B, S, S, 3]`` to ``[B, K]`` probabilities, so ``evaluate``
with the usual metrics gives 10-crop top-1/top-5.
"""

import keras
import tensorflow as tf

from tfcnn.augment import crop as crop_lib

NUM_VIEWS = 10


@keras.saving.register_keras_serializable(package="tfcnn")
class TenCropViews(keras.layers.Layer):
    """Stacks the ten views of each image along the batch axis.

    Views in order: top-left, top-right, bottom-left, bottom-right, centre,
    then the same five mirrored left-right. Output row ``v * B + b`` is view
    ``v`` of image ``b``.

    Args:
        size: int, side of the square views.
        **kwargs: base layer arguments.

    Input shape:
        ``(B, H, W, C)`` with ``H, W >= size``.

    Output shape:
        ``(10 * B, size, size, C)``.
    """

    def __init__(self, size=224, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size <= 0:
            raise ValueError(
                f"size must be a positive int. Received: size={size!r}")
        self.size = size

    def call(self, inputs):
        return tf.concat(ten_crop_views(inputs, self.size), axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else NUM_VIEWS * input_shape[0]
        return (batch, self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


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

    def __init__(self, num_views=NUM_VIEWS, **kwargs):
        super().__init__(**kwargs)
        self.num_views = num_views

    def call(self, inputs):
        classes = tf.shape(inputs)[-1]
        views = tf.reshape(inputs, [self.num_views, -1, classes])
        return tf.reduce_mean(views, axis=0)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0]
        if batch is not None:
            batch //= self.num_views
        return (batch, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_views": self.num_views}


def ten_crop_views(images, size):
    """The ten views of a batch: four corners, centre, and their mirrors.

    Args:
        images: ``[B, H, W, C]`` tensor with ``H, W >= size``.
        size: int, side of each view.

    Returns:
        list of ten ``[B, size, size, C]`` tensors.
    """
    shape = tf.shape(images)
    bottom, right = shape[1] - size, shape[2] - size
    offsets = [(0, 0), (0, right), (bottom, 0), (bottom, right),
               (bottom // 2, right // 2)]
    views = [images[:, top:top + size, left:left + size, :]
             for top, left in offsets]
    return views + [tf.reverse(view, axis=[2]) for view in views]


def ten_crop_model(model):
    """Wraps a training model to predict the average over ten crops.

    Args:
        model: functional training model whose preprocessing contains one
            ``tfcnn.augment.RandomOrCentreCrop`` (as ``build_preprocessing``
            makes it) and whose output is softmax probabilities.

    Returns:
        ``keras.Model`` from the training model's input (uint8
        ``[B, S, S, 3]``) to ``[B, K]`` probabilities averaged over the ten
        views, sharing the training model's weights.

    Raises:
        ValueError: the model has no (or several) ``RandomOrCentreCrop``,
            or several outputs.
    """
    if len(model.outputs) != 1:
        raise ValueError(
            "model must have one output (the class probabilities). "
            f"Received: model={model.name!r} with {len(model.outputs)}")
    crops = [layer for layer in model.layers
             if isinstance(layer, crop_lib.RandomOrCentreCrop)]
    if len(crops) != 1:
        raise ValueError(
            "model must contain exactly one RandomOrCentreCrop layer (made "
            "by tfcnn.augment.build_preprocessing unless augment.crop is "
            "none). "
            f"Received: model={model.name!r} with {len(crops)}")
    crop = crops[0]
    before = keras.Model(model.inputs, crop.input, name="before_crop")
    after = keras.Model(crop.output, model.outputs[0], name="after_crop")
    inputs = keras.Input(model.inputs[0].shape[1:],
                         dtype=model.inputs[0].dtype, name="image")
    views = TenCropViews(crop.size, name="ten_crop_views")(before(inputs))
    probabilities = after(views)
    outputs = AverageViews(NUM_VIEWS, dtype="float32",
                           name="average_views")(probabilities)
    return keras.Model(inputs, outputs, name=f"{model.name}_ten_crop")


def evaluate_ten_crop(model, dataset, *, steps=None, verbose=0):
    """10-crop top-1 and top-5 accuracy of a training model.

    Args:
        model: the training model (see ``ten_crop_model``).
        dataset: ``tf.data.Dataset`` of ``(uint8 [B, S, S, 3], int [B])``,
            e.g. ``make_dataset(..., training=False)``.
        steps: int or None, batches to evaluate; None: the whole dataset.
            Defaults to None.
        verbose: int, Keras verbosity. Defaults to 0.

    Returns:
        dict with ``ten_crop_accuracy``, ``ten_crop_top5_accuracy`` and
        ``ten_crop_loss`` (cross-entropy of the averaged probabilities).
    """
    wrapper = ten_crop_model(model)
    wrapper.compile(loss="sparse_categorical_crossentropy", metrics=[
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseTopKCategoricalAccuracy(k=5,
                                                    name="top5_accuracy")])
    results = wrapper.evaluate(dataset, steps=steps, verbose=verbose,
                               return_dict=True)
    return {"ten_crop_accuracy": float(results["accuracy"]),
            "ten_crop_top5_accuracy": float(results["top5_accuracy"]),
            "ten_crop_loss": float(results["loss"])}
