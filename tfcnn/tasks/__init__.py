"""What differs between tasks, one module per task.

Image classification (one label per image) and semantic segmentation (one
label per pixel) go through the same commands, recipes, strategies and
export; what differs lives here, as TF Model Garden keeps
``tasks/image_classification.py`` beside ``tasks/semantic_segmentation.py``:
the host pipeline's decoding, the training model (which augmentation layers
it holds), the loss, the metrics, the TensorBoard figures and the figures
of evaluation. The manifest of the shards records the task
(``Manifest.task``), so ``tfcnn train`` and ``tfcnn evaluate`` infer it;
generic code asks ``get_task(name)`` and never branches on the name.

>>> from tfcnn import tasks
>>> tasks.get_task("segmentation").monitor
'mean_iou'
"""

from tfcnn.errors import DataError
from tfcnn.tasks.image_classification import ImageClassificationTask
from tfcnn.tasks.semantic_segmentation import SemanticSegmentationTask

_TASKS = {task.name: task for task in (ImageClassificationTask(),
                                       SemanticSegmentationTask())}


def get_task(name):
    """The task registered as ``name``.

    Args:
        name: str, "classification" or "segmentation" (as manifests
            record it).

    Returns:
        a ``tfcnn.tasks.task.Task``.

    Raises:
        DataError: an unknown name (the message lists the known ones).
    """
    try:
        return _TASKS[name]
    except KeyError:
        raise DataError(
            f"unknown task {name!r}; known tasks: {', '.join(_TASKS)}. "
            f"Received: task={name!r}") from None


def default_task():
    """The task of labels that record none (tfds without masks, synthetic
    images, metrics written before they named their task): one class per
    image, as ``tfcnn.data.manifest.Manifest.task`` also assumes."""
    return _TASKS[ImageClassificationTask.name]


def task_of_model(model):
    """The task of a saved INFERENCE MODEL, told by its output's rank.

    Args:
        model: a ``keras.Model`` with one output.

    Returns:
        a ``tfcnn.tasks.task.Task``.

    Raises:
        DataError: no task has an output of that rank.
    """
    shape = tuple(model.outputs[0].shape)
    for task in _TASKS.values():
        if task.output_rank == len(shape):
            return task
    expected = " or ".join(f"rank {task.output_rank} ({task.name})"
                           for task in _TASKS.values())
    raise DataError(
        f"the model's output is of no task: expected {expected}. "
        f"Received: output_shape={shape}")


def task_of_source(src):
    """The task whose ingest reads the folder ``src``.

    Each task is asked (``Task.reads_source``: segmentation's Pascal VOC
    or images/masks layouts); a folder that none claims holds class
    folders, the default task's.

    Args:
        src: str or Path, a source folder.

    Returns:
        a ``tfcnn.tasks.task.Task``.
    """
    found = [task for task in _TASKS.values() if task.reads_source(src)]
    return found[0] if found else default_task()


def ingest(src, out, **options):
    """Writes the source folder ``src`` as TFRecord shards in ``out``, in
    the schema of its task (``task_of_source``).

    Args:
        src: str or Path, class folders
            (``tfcnn.data.classification_ingest.ingest``) or a segmentation
            source (``tfcnn.data.segmentation_ingest.ingest_segmentation``).
        out: str or Path, the output folder.
        **options: the arguments of
            ``tfcnn.data.classification_ingest.ingest``; each task refuses
            those it has no use for (``raw_masks`` for class folders,
            compact or raw storage for segmentation).

    Returns:
        ``tfcnn.console.Result``: the manifest dict and its result line.
    """
    return task_of_source(src).ingest(src, out, **options)


def task_of_tfds(data):
    """The task of the tfds dataset a recipe's ``data`` section names.

    Args:
        data: ``tfcnn.recipe.DataConfig``.

    Returns:
        the one ``tfcnn.tasks.task.Task`` whose ``reads_tfds(data)``.
    """
    task, = [task for task in _TASKS.values() if task.reads_tfds(data)]
    return task


def list_tasks():
    """The registered task names."""
    return list(_TASKS)


__all__ = ["ImageClassificationTask", "SemanticSegmentationTask",
           "default_task", "get_task", "ingest", "list_tasks",
           "task_of_model", "task_of_source", "task_of_tfds"]
