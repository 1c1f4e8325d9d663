"""TensorFlow Lite export: the network with its preprocessing, one file.

``convert(model, quantization=...)`` turns the trained inference model
(uint8 images in, the crop and mean subtraction as its own layers, float32
probabilities out) into a ``.tflite`` flatbuffer with TensorFlow's
``tf.lite.TFLiteConverter``:

* input: uint8 ``[1, H, W, 3]`` (``H, W`` the model's input, or
  ``image_size`` for a segmentation model that takes any size);
* output: ``probabilities [1, K]`` (classification) or ``class_map
  [1, H, W]`` int32, the arg-max class of every pixel (a task whose labels
  are masks, ``Task.labels_per_pixel``, as ``tfcnn.tasks.task_of_model``
  tells the model's task);
* ``quantization``: "float32"; "dynamic" (weights stored as int8,
  activations float: TFLite's dynamic-range quantization); "int8" (weights
  and activations int8, calibrated on a representative sample of images,
  e.g. from the training shards: ``representative_images``). Ops that
  TFLite has no integer kernel for stay float.

The class names and the output kind go into a JSON file beside the
``.tflite`` (``<file>.json``), which ``run`` and ``tfcnn predict`` read,
with the sha256 of the Keras model file it was converted from and of the
``.tflite`` itself, so ``state`` tells a finished file of a model from an
interrupted one and from another model's (``tfcnn run``'s tflite stage
skips, finishes or refuses on that).
"""

import enum
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from tfcnn import atomic_files
from tfcnn.errors import DataError

QUANTIZATIONS = ("float32", "dynamic", "int8")
PROBABILITIES = "probabilities"
CLASS_MAP = "class_map"


class State(enum.Enum):
    """What a ``.tflite`` path holds for one model and quantization."""

    ABSENT = "absent"          # no file
    COMPLETE = "complete"      # this model's file, whole
    INTERRUPTED = "interrupted"  # this model's file, not (or not yet) whole
    OTHER = "other"            # a file of another model or quantization


def file_path(export_dir, name, quantization="float32"):
    """``<export_dir>/<name>.tflite``, or ``<name>_<quantization>.tflite``
    when quantized.

    Args:
        export_dir: str or Path, the export root.
        name: str, the model's name (``export.name``).
        quantization: str, one of ``QUANTIZATIONS``. Defaults to
            "float32".

    Returns:
        Path.
    """
    stem = name if quantization == "float32" else f"{name}_{quantization}"
    return Path(export_dir) / f"{stem}.tflite"


def state(path, model_sha256, quantization):
    """What ``path`` holds for the model file of sha256 ``model_sha256``.

    Reads the JSON ``write`` puts beside the file: it is written first, so
    a conversion killed before the ``.tflite`` was renamed into place
    leaves this model's JSON and another (or no) ``.tflite``:
    ``State.INTERRUPTED``.

    Args:
        path: str or Path of the ``.tflite`` file.
        model_sha256: str, hex sha256 of the Keras model file.
        quantization: str, one of ``QUANTIZATIONS``.

    Returns:
        ``State``.
    """
    from tfcnn.data import sharding

    path = Path(path)
    try:
        info = json.loads(Path(f"{path}.json").read_text())
    except (OSError, ValueError):
        info = {}
    ours = (isinstance(info, dict)
            and info.get("model_sha256") == model_sha256
            and info.get("quantization") == quantization)
    if not path.is_file():
        return State.INTERRUPTED if ours else State.ABSENT
    if not ours:
        return State.OTHER
    if sharding.file_sha256(path) == info.get("tflite_sha256"):
        return State.COMPLETE
    return State.INTERRUPTED


def convert(model, *, quantization="float32", representative=None,
            image_size=None):
    """Converts an inference model to TFLite.

    Args:
        model: ``keras.Model`` from uint8 ``[B, H, W, 3]`` images to
            probabilities ``[B, K]`` or ``[B, H, W, K]``.
        quantization: str, one of ``QUANTIZATIONS``. Defaults to
            "float32".
        representative: iterable of uint8 ``[H, W, 3]`` arrays, the
            calibration images of "int8". Defaults to None.
        image_size: int or None, the side of the square input when the
            model's own is undefined (segmentation). Defaults to None.

    Returns:
        ``(flatbuffer bytes, output name)``.

    Raises:
        ValueError: an unknown quantization, "int8" without images, or no
            input size.
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"quantization must be one of {', '.join(QUANTIZATIONS)}. "
            f"Received: quantization={quantization!r}")
    _, height, width, channels = model.inputs[0].shape
    if height is None or width is None:
        if not image_size:
            raise ValueError(
                "the model takes any size: give image_size for the "
                f"TFLite input. Received: image_size={image_size!r}")
        height = width = int(image_size)
    from tfcnn import tasks

    dense = tasks.task_of_model(model).labels_per_pixel
    output = CLASS_MAP if dense else PROBABILITIES

    import keras

    def serve(image):
        probabilities = model(image, training=False)
        if dense:
            return {output: tf.argmax(probabilities, axis=-1,
                                      output_type=tf.int32)}
        return {output: probabilities}

    # Through a SavedModel written by Keras' ExportArchive (which tracks
    # the model's variables), as TensorFlow's converter expects them.
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[tf.TensorSpec(
        (1, height, width, channels), tf.uint8, name="image")])
    with tempfile.TemporaryDirectory() as directory:
        archive.write_out(directory, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            directory, signature_keys=["serve"])
        return _convert(converter, quantization, representative), output


def _convert(converter, quantization, representative):
    import tensorflow as tf

    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "int8":
        images = list(representative or ())
        if not images:
            raise ValueError(
                "quantization='int8' needs representative images to "
                "calibrate on. Received: none")

        def sample():
            for image in images:
                yield [np.asarray(image, np.uint8)[None]]

        converter.representative_dataset = sample
    return converter.convert()


def representative_images(dataset, count=100):
    """The first ``count`` images of a dataset of ``(images, labels)``.

    Args:
        dataset: a ``tf.data.Dataset`` of uint8 image batches (and labels),
            e.g. ``tfcnn.train.inputs.evaluation_inputs(recipe,
            "train").dataset``: the training shards, preprocessed as
            evaluation preprocesses them.
        count: int, images to take. Defaults to 100.

    Returns:
        list of uint8 ``[H, W, 3]`` arrays.
    """
    images = []
    for batch in dataset:
        batch = batch[0] if isinstance(batch, tuple) else batch
        for image in np.asarray(batch):
            images.append(image.astype(np.uint8))
            if len(images) == count:
                return images
    return images


def write(model, path, *, class_names, quantization="float32",
          representative=None, image_size=None, model_sha256=None,
          replace=False):
    """Converts ``model`` and writes ``path`` and ``path + ".json"``.

    An existing file is replaced only when asked (as an export never
    overwrites a published version); each file appears whole or not at
    all, the JSON first (see ``state``).

    Args:
        model: as for ``convert``.
        path: str or Path ending in ``.tflite``.
        class_names: list of str, the label names in label order.
        quantization, representative, image_size: as for ``convert``.
        model_sha256: str or None, the sha256 of the model file converted,
            recorded in the JSON. Defaults to None.
        replace: bool, replace an existing file. Defaults to False.

    Returns:
        Path of the ``.tflite`` file.

    Raises:
        DataError: the file exists already and ``replace`` is False.
    """
    path = Path(path)
    if path.exists() and not replace:
        raise DataError(
            f"{path} exists already; an export never replaces one. "
            f"Received: {path}")
    flatbuffer, output = convert(model, quantization=quantization,
                                 representative=representative,
                                 image_size=image_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_files.write_json_atomic(Path(f"{path}.json"), {
        "class_names": list(class_names), "output": output,
        "quantization": quantization, "model_sha256": model_sha256,
        "tflite_sha256": hashlib.sha256(flatbuffer).hexdigest()})
    with atomic_files.replacing(path, suffix=".tflite") as tmp:
        Path(tmp).write_bytes(flatbuffer)
    return path


def export_run(model_dir, *, export_dir, name, quantization="float32",
               recipe=None, replace=False):
    """Writes the ``.tflite`` of a trained run (``tfcnn export --format
    tflite``).

    Args:
        model_dir: str or Path, a run folder (``model.keras`` and
            ``classes.json``) or a ``.keras`` file.
        export_dir: str or Path, the export root.
        name: str, the file's stem: ``<export_dir>/<name>.tflite``, or
            ``<name>_<quantization>.tflite`` when quantized.
        quantization: str, one of ``QUANTIZATIONS``.
        recipe: ``tfcnn.recipe.Recipe`` or None; "int8" calibrates on 100
            images of its training split, and a model that takes any
            size gets ``data.crop_size`` squares.
        replace: bool, replace an existing file. Defaults to False.

    Returns:
        Path of the ``.tflite`` file.

    Raises:
        DataError: no model, "int8" without a recipe, or an existing file.
    """
    from tfcnn.data import sharding
    from tfcnn.models import saving
    from tfcnn.run_folder import RunFolder

    path = Path(model_dir)
    classes = RunFolder(path).classes
    if path.is_dir():
        path = RunFolder(path).model
    if not path.is_file():
        raise DataError(f"no Keras model file at {str(path)!r}")
    model = saving.load_model(path)
    class_names = [str(i) for i in range(model.outputs[0].shape[-1])]
    if classes.is_file():
        class_names = json.loads(classes.read_text())["class_names"]
    representative = None
    if quantization == "int8":
        if recipe is None:
            raise DataError(
                "int8 quantization calibrates on the training images: "
                "export a recipe or a run folder with its recipe.toml. "
                f"Received: {model_dir}")
        from tfcnn.train import inputs

        representative = representative_images(inputs.evaluation_inputs(
            recipe, "train", batch_size=16).dataset)
    return write(model, file_path(export_dir, name, quantization),
                 class_names=class_names, quantization=quantization,
                 representative=representative,
                 image_size=recipe.data.crop_size if recipe else None,
                 model_sha256=sharding.file_sha256(path), replace=replace)


class TFLiteModel:
    """Runs a ``.tflite`` written by ``write`` with ``tf.lite.Interpreter``.

    Args:
        path: str or Path of the ``.tflite`` file.

    Attributes:
        image_size: ``(H, W)`` of its input.
        output: "probabilities" or "class_map".
        class_names: list of str.
    """

    def __init__(self, path):
        import tensorflow as tf

        path = Path(path)
        try:
            info = json.loads(Path(f"{path}.json").read_text())
        except (OSError, ValueError):
            info = {}
        self.interpreter = tf.lite.Interpreter(model_path=str(path))
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.image_size = tuple(int(d) for d in self._input["shape"][1:3])
        self.output = info.get("output", PROBABILITIES)
        self.class_names = info.get("class_names")

    def __call__(self, images):
        """The outputs of a batch of uint8 ``[B, H, W, 3]`` images.

        Returns:
            NumPy array, ``[B, K]`` probabilities or ``[B, H, W]`` classes.
        """
        results = []
        for image in np.asarray(images, np.uint8):
            self.interpreter.set_tensor(self._input["index"], image[None])
            self.interpreter.invoke()
            results.append(self.interpreter.get_tensor(
                self._output["index"])[0])
        return np.stack(results)
