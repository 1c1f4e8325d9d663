"""Versioned, verified, atomic publishing of a trained model as a SavedModel.

``export_model`` writes the serving model (the task's ``serving_model``:
``tfcnn.export.classification_serving``, ``segmentation_serving``) to a
hidden temporary directory beside the published versions, adds TF Serving's
warm-up file and a metadata file, checks the result in a fresh Python
process in which tfcnn can't be imported (``tfcnn/export/selfcheck.py``),
and only then renames it to ``<export_dir>/<name>/<version>/``. The rename
happens under a per-model lock file and never replaces an existing version;
anything that fails removes the temporary directory, so a failed export
leaves no version behind and TF Serving never sees a half-written one.
"""

import contextlib
import datetime
import fcntl
import importlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tfcnn import atomic_files
from tfcnn import console
from tfcnn import storage
from tfcnn import tasks
from tfcnn.errors import ExportError
from tfcnn.export import arguments
from tfcnn.export import layout
from tfcnn.export import selfcheck

VERIFY_ATOL = 1e-5
VERIFY_TIMEOUT_S = 900
_LOCK_FILE = ".publish.lock"


def export_model(model, *, export_dir="saved_models", name, version=0,
                 top_k=5, class_names=None, verify=True, verbose=True):
    """Exports a trained model to ``<export_dir>/<name>/<version>/``.

    Args:
        model: a ``keras.Model`` following the training-model contract, a
            path to a ``.keras`` file, or a training ``model_dir`` holding
            ``model.keras`` and ``classes.json``; either may be a URL
            (``gs://...``, ``tfcnn.storage``).
        export_dir: str or path, the export root: one folder per model
            under it, each a TF Serving model base path; a local folder
            (publishing is one atomic folder rename, which object storage
            lacks). Defaults to "saved_models".
        name: str, the model name: one path component of letters, digits,
            ``_``, ``.`` and ``-``.
        version: int, the version to publish, from 1 to
            ``layout.MAX_VERSION`` (TF Serving's int64); 0 picks the next
            free one. Defaults to 0.
        top_k: int, classes per answer (clamped to the number of classes).
            Defaults to 5.
        class_names: sequence of str, one per class; None reads
            ``classes.json`` beside the model, or else uses "0", "1", ...
            Defaults to None.
        verify: bool, check the SavedModel in a fresh process without
            tfcnn before publishing. Defaults to True.
        verbose: bool, say on stderr, once the arguments are checked, that
            writing and checking take a while (as Keras' ``model.export``
            says what it saved). Defaults to True.

    Returns:
        ``pathlib.Path`` of the published version directory.

    Raises:
        ExportError: the version exists, or the check failed (nothing is
            published then).
        FileNotFoundError: ``model`` names no model file.
        ArgumentError: (a ValueError) a bad argument (named in the
            message).

    Example:

    >>> path = export_model("runs/lenet", name="digits")
    >>> path.name
    '1'
    """
    layout.check_model_name(name)
    if storage.is_url(export_dir):
        raise arguments.ArgumentError(
            "export_dir must be a local folder: a version is published by "
            "one atomic folder rename, which object storage lacks; export "
            "locally, then copy the version folder up. "
            f"Received: export_dir={export_dir}")
    if not (type(version) is int and version == 0):  # 0: the next free
        layout.check_version(version)
    keras_model, file_class_names, source = _load_model(model)
    if class_names is None:
        class_names = file_class_names
    serving_class = _serving_class(tasks.task_of_model(keras_model))
    if class_names is None:
        class_names = [str(i) for i in range(
            int(keras_model.outputs[0].shape[-1]))]
    serving_model = serving_class(keras_model, class_names, top_k)

    # Absolute: the verification child process runs in another directory.
    model_root = pathlib.Path(export_dir).absolute() / name
    model_root.mkdir(parents=True, exist_ok=True)
    if version and (model_root / str(version)).exists():
        raise ExportError(_exists_message(model_root, version))
    if verbose:
        console.progress("export: writing the SavedModel" + (
            " and checking it in a fresh process (about 15 s)"
            if verify else "") + "...")
    with atomic_files.staging_folder(model_root, ".tmp-") as staging:
        # mkdtemp makes the directory private; a published version must be
        # readable by a model server running as another user.
        os.chmod(staging, 0o755)
        _write(serving_model, staging, name=name, source=source)
        if verify:
            verify_saved_model(serving_model, staging)
        atomic_files.fsync_tree(staging)
        with _model_lock(model_root):
            if not version:
                version = layout.check_version(
                    max(layout.list_versions(model_root), default=0) + 1)
            target = model_root / str(version)
            if target.exists():
                raise ExportError(_exists_message(model_root, version))
            os.rename(staging, target)
            atomic_files.fsync_dir(model_root)
    return target


def _serving_class(task):
    """The class a task names as its ``serving_model`` ("module:Class")."""
    module, _, name = task.serving_model.partition(":")
    return getattr(importlib.import_module(module), name)


def verify_saved_model(serving_model, saved_model_dir):
    """Checks a written SavedModel against its Keras model in a new process.

    The child process runs ``selfcheck.py`` with ``import tfcnn`` blocked:
    every signature, on a batch of sample images and on a batch of one,
    must give the Keras model's probabilities within ``VERIFY_ATOL``, and
    the warm-up requests must replay.

    Args:
        serving_model: the ``serving.ServingModel`` that was written.
        saved_model_dir: path of the written SavedModel.

    Returns:
        the selfcheck report dict (``max_abs_diff`` per signature).

    Raises:
        ExportError: a check failed; the message lists what.
    """
    with tempfile.TemporaryDirectory(prefix="tfcnn-verify-") as cases_dir:
        _write_cases(serving_model, cases_dir)
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            done = subprocess.run(
                [sys.executable, "-I", selfcheck.__file__,
                 os.path.abspath(saved_model_dir), cases_dir],
                capture_output=True, text=True, env=env, cwd=cases_dir,
                timeout=VERIFY_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ExportError(
                f"the SavedModel check did not finish in {VERIFY_TIMEOUT_S} "
                "s; nothing was published") from None
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = done.stderr.strip().splitlines()[-5:]
        raise ExportError(
            "the SavedModel failed to load or run without tfcnn; nothing "
            "was published: " + " | ".join(tail)) from None
    if done.returncode or not report.get("ok"):
        raise ExportError(
            "the SavedModel check failed; nothing was published: "
            + "; ".join(report.get("problems", ["unknown failure"])))
    return report


def _load_model(model):
    """Returns ``(keras_model, class_names or None, source str or None)``."""
    if isinstance(model, keras.Model):
        return model, None, None
    if not isinstance(model, (str, os.PathLike, storage.UrlPath)):
        raise arguments.ArgumentError(
            "model must be a keras.Model, a .keras file or a training "
            f"model_dir. Received: model={model!r}")
    path = storage.path(model)
    class_names = None
    if path.is_dir():
        from tfcnn.run_folder import RunFolder

        folder = RunFolder(path)
        if folder.classes.is_file():
            class_names = _read_class_names(folder.classes)
        path = folder.model
    if not path.is_file():
        raise FileNotFoundError(f"no Keras model file at {str(path)!r}")
    from tfcnn.models import saving

    return saving.load_model(path), class_names, str(path)


def _read_class_names(path):
    with storage.open_file(path, "r") as f:
        names = json.load(f).get("class_names")
    if not isinstance(names, list) or not all(
            isinstance(n, str) for n in names):
        raise ExportError(f"{path}: 'class_names' must be a list of "
                          f"strings. Received: class_names={names!r}")
    return names


def _exists_message(model_root, version):
    return (f"version {version} of model {model_root.name!r} already exists "
            f"in {str(model_root)!r}; published versions are never "
            f"overwritten. Received: version={version}")


def _write(serving_model, directory, *, name, source):
    """Writes the SavedModel, warm-up requests and metadata."""
    serving_model.archive().write_out(str(directory), verbose=False)
    extra = directory / "assets.extra"
    extra.mkdir(exist_ok=True)
    _write_warmup(serving_model, directory / layout.WARMUP_FILE, name)
    metadata = {
        "format": "tfcnn-export/1",
        "name": name,
        **serving_model.metadata(),
        "source": source,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    with open(directory / layout.METADATA_FILE, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")


def _write_cases(serving_model, cases_dir):
    """Writes the selfcheck inputs and the Keras model's answers."""
    arrays, signatures = serving_model.selfcheck_cases()
    np.savez(os.path.join(cases_dir, "cases.npz"), **arrays)
    with open(os.path.join(cases_dir, "cases.json"), "w") as f:
        json.dump({"signatures": signatures, "atol": VERIFY_ATOL,
                   "class_names": serving_model.class_names}, f)


def _write_warmup(serving_model, path, name):
    """Writes one TF Serving warm-up request per signature.

    TF Serving replays ``assets.extra/tf_serving_warmup_requests`` (a
    TFRecord file of ``PredictionLog`` protos) when it loads a version, so
    the first real request doesn't pay for graph initialization.
    """
    from tensorflow_serving.apis import model_pb2
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    inputs = serving_model.warmup_inputs()
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, (input_name, value) in inputs.items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(
                    name=name, signature_name=signature))
            request.inputs[input_name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


@contextlib.contextmanager
def _model_lock(model_root):
    """Holds an exclusive lock on ``<model_root>/.publish.lock``."""
    with open(model_root / _LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
