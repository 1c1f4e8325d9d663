"""Evaluation of a trained model on its evaluation split.

``evaluate(recipe)`` loads ``<train.model_dir>/model.keras`` and asks the
data's task (``tfcnn.tasks``) for its figures. A classifier (the TRAINING
MODEL: at inference its crop layer takes the centre crop) gets loss, top-1
and top-5 accuracy over one pass, every image counted once (the last batch
is not dropped); a segmentation model gets mean IoU, pixel accuracy and
the IoU of each class, at each image's own resolution. With
``evaluate.ten_crop`` a classifier also gets the AlexNet paper's 10-crop
figures (four corners and the centre, each with its mirror image,
softmax averaged) through ``tfcnn.ten_crop``.
"""

import json

from tfcnn.errors import DataError
from tfcnn.models import saving
from tfcnn.run_folder import RunFolder


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

    folder = RunFolder(recipe.train.model_dir)
    model_path = folder.model
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

    task = (tasks.get_task(metrics["task"]) if "task" in metrics
            else tasks.default_task())
    return task.format_metrics(metrics)


def _check_classes(model, data, model_path):
    classes_path = RunFolder(model_path.parent).classes
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
