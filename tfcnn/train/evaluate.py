"""Evaluation of a trained model on its evaluation split.

``evaluate(recipe)`` loads ``<train.model_dir>/model.keras`` and asks the
data's task (``tfcnn.tasks``) for its figures. A classifier (the TRAINING
MODEL: at inference its crop layer takes the centre crop) gets loss, top-1
and top-5 accuracy over one pass, every image counted once (the last batch
is not dropped); a segmentation model gets mean IoU, pixel accuracy and
the IoU of each class, at each image's own resolution. With
``evaluate.ten_crop`` a classifier also gets the AlexNet paper's 10-crop
figures (four corners and the centre, each with its mirror image,
softmax averaged) through ``tfcnn.train.ten_crop``.
"""

import json
from pathlib import Path

from tfcnn import console
from tfcnn import saving
from tfcnn.errors import DataError


def evaluate(recipe, verbose=True):
    """Evaluates the trained model of a recipe on its evaluation split.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        verbose: bool, show Keras' progress (a bar on a terminal, one
            line elsewhere). Defaults to True.

    Returns:
        JSON-ready dict: ``task``, ``split``, ``num_examples``, the task's
        figures and ``model`` (path). Classification: ``loss``,
        ``accuracy``, ``top5_accuracy`` (with 10-crop also
        ``ten_crop_accuracy``, ``ten_crop_top5_accuracy``,
        ``ten_crop_loss`` and ``views``); segmentation: ``mean_iou``,
        ``pixel_accuracy`` and ``per_class_iou`` (class name -> IoU, None
        for a class neither labelled nor predicted).

    Raises:
        DataError: no trained model in ``train.model_dir``, or no split to
            evaluate on.
    """
    from tfcnn.train import strategy as strategy_lib

    strategy = strategy_lib.local_strategy()

    from tfcnn.train import inputs as inputs_lib

    model_path = Path(recipe.train.model_dir) / "model.keras"
    if not model_path.is_file():
        raise DataError(
            f"no trained model at {model_path}: run `tfcnn train` first. "
            f"Received: train.model_dir={recipe.train.model_dir!r}")
    data = inputs_lib.evaluation_inputs(recipe)
    with strategy.scope():
        model = saving.load_model(model_path)
    _check_classes(model, data, model_path)
    metrics = {"task": data.task.name, "split": data.split,
               "num_examples": int(data.num_examples)}
    with strategy.scope():
        metrics.update(data.task.evaluate(model, data, recipe,
                                          verbose=verbose))
    metrics["model"] = str(model_path)
    return metrics


def classification_figures(model, data, recipe, verbose=True):
    """Loss, top-1 and top-5 accuracy (and 10-crop figures) of a classifier.

    Call it under the strategy's scope.

    Args:
        model: the loaded TRAINING MODEL.
        data: ``tfcnn.train.inputs.EvalInputs``.
        recipe: ``tfcnn.recipe.Recipe``.
        verbose: bool, Keras' progress bar. Defaults to True.

    Returns:
        dict: ``loss``, ``accuracy``, ``top5_accuracy``; with 10-crop also
        ``ten_crop_accuracy``, ``ten_crop_top5_accuracy``, ``ten_crop_loss``
        and ``views`` (10; 5 when the recipe trains without flips).
    """
    from tfcnn.train import losses
    from tfcnn.train import metrics as metrics_lib

    model.compile(loss=losses.CrossEntropy(),
                  metrics=metrics_lib.build_metrics())
    progress = console.keras_verbosity() if verbose else 0
    results = model.evaluate(data.dataset, steps=data.steps,
                             return_dict=True, verbose=progress)
    metrics = {
        "loss": float(results["loss"]),
        "accuracy": float(results["accuracy"]),
        "top5_accuracy": float(results["top5_accuracy"]),
    }
    if recipe.evaluate.ten_crop:
        from tfcnn.train import ten_crop

        # Mirror views only for a model that trained on mirror images.
        metrics.update(ten_crop.evaluate_ten_crop(
            model, data.dataset, steps=data.steps,
            verbose=progress, flip=recipe.augment.flip))
    return metrics


def format_metrics(metrics):
    """One line for people, in the terms of the evaluated task.

    Args:
        metrics: dict from ``evaluate``.

    Returns:
        str, e.g. ``"test (360 images): top-1 97.50%, top-5 100.00%,
        loss 0.0812"`` or ``"test (50 images): mean IoU 81.20%, pixel
        accuracy 97.10%"``.
    """
    from tfcnn import tasks

    return tasks.get_task(metrics.get("task", "classification")
                          ).format_metrics(metrics)


def format_classification(metrics):
    """``format_metrics`` of a classifier: split, count, top-1, top-5, loss."""
    text = (f"{metrics['split']} ({metrics['num_examples']} images): "
            f"top-1 {metrics['accuracy']:.2%}, "
            f"top-5 {metrics['top5_accuracy']:.2%}, "
            f"loss {metrics['loss']:.4f}")
    if "ten_crop_accuracy" in metrics:
        text += (f"; {metrics['views']}-crop top-1 "
                 f"{metrics['ten_crop_accuracy']:.2%}, "
                 f"top-5 {metrics['ten_crop_top5_accuracy']:.2%}")
    return text


def _check_classes(model, data, model_path):
    classes_path = model_path.with_name("classes.json")
    outputs = model.output_shape[-1]
    if outputs != len(data.class_names):
        raise DataError(
            f"{model_path} predicts {outputs} classes but the {data.split} "
            f"split has {len(data.class_names)}. Received: "
            f"num_classes={len(data.class_names)}")
    if classes_path.is_file():
        saved = json.loads(classes_path.read_text()).get("class_names")
        if saved is not None and list(saved) != list(data.class_names):
            raise DataError(
                f"{classes_path} lists other class names than the data "
                f"being evaluated. Received: class_names="
                f"{data.class_names[:5]}...")
