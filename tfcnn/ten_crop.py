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

A model trained without flips (``augment.flip = false``: a mirrored digit
is another symbol) never saw a mirror image, and averaging over mirrored
views would hurt it; with ``flip=False`` the views are the five crops
alone.
"""

import keras

from tfcnn.augment import crop as crop_lib
from tfcnn.layers.average_views import AverageViews
from tfcnn.layers.ten_crop_views import NUM_VIEWS
from tfcnn.layers.ten_crop_views import TenCropViews


def ten_crop_model(model, flip=True):
    """Wraps a training model to predict the average over ten crops.

    Args:
        model: functional training model whose preprocessing contains one
            ``tfcnn.augment.RandomOrCentreCrop`` (as ``build_preprocessing``
            makes it) and whose output is softmax probabilities.
        flip: bool, also average the five crops' mirror images (ten
            views); False: the five crops alone. Defaults to True.

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
    cut = TenCropViews(crop.size, flip=flip, name="ten_crop_views")
    probabilities = after(cut(before(inputs)))
    outputs = AverageViews(cut.num_views, dtype="float32",
                           name="average_views")(probabilities)
    return keras.Model(inputs, outputs, name=f"{model.name}_ten_crop")


def evaluate_ten_crop(model, dataset, *, steps=None, verbose=0, flip=True):
    """10-crop top-1 and top-5 accuracy of a training model.

    Args:
        model: the training model (see ``ten_crop_model``).
        dataset: ``tf.data.Dataset`` of ``(uint8 [B, S, S, 3], int [B])``,
            e.g. ``make_dataset(..., training=False)``.
        steps: int or None, batches to evaluate; None: the whole dataset.
            Defaults to None.
        verbose: int, Keras verbosity. Defaults to 0.
        flip: bool, average ten views (crops and mirrors); False: the
            five crops alone (for models trained without flips).
            Defaults to True.

    Returns:
        dict with ``ten_crop_accuracy``, ``ten_crop_top5_accuracy`` (with
        more than 5 classes),
        ``ten_crop_loss`` (cross-entropy of the averaged probabilities)
        and ``views`` (10, or 5 without ``flip``).
    """
    from tfcnn import metrics as metrics_lib

    wrapper = ten_crop_model(model, flip=flip)
    wrapper.compile(loss="sparse_categorical_crossentropy",
                    metrics=metrics_lib.build_metrics(
                        num_classes=model.output_shape[-1]))
    results = wrapper.evaluate(dataset, steps=steps, verbose=verbose,
                               return_dict=True)
    figures = {"ten_crop_accuracy": float(results["accuracy"]),
               "ten_crop_loss": float(results["loss"]),
               "views": NUM_VIEWS if flip else NUM_VIEWS // 2}
    if "top5_accuracy" in results:
        figures["ten_crop_top5_accuracy"] = float(results["top5_accuracy"])
    return figures
