"""Checks an exported SavedModel in a process where tfcnn can't be imported.

Run by ``tfcnn.export.publish`` before a version is published, as a script
in a fresh interpreter (``python -I selfcheck.py SAVED_MODEL CASES``), so it
imports nothing but TensorFlow, NumPy and the TF Serving protos, and blocks
``import tfcnn`` outright: a SavedModel that needed tfcnn's Python code would
fail here, not in production.

``CASES`` is a directory with ``cases.json`` (signatures, input names,
tolerance, class names) and ``cases.npz`` (the inputs and the probabilities
the Keras model gave for them). For every signature the script checks, on
the whole batch and on a batch of one: probabilities equal to the Keras
model's within the tolerance; top-k ids, scores and names consistent with
them (a segmentation model: a class map at the input's size, the arg-max
of the probabilities). It then replays TF Serving's warm-up requests. The
last line of stdout is a JSON report; the exit status is 0 when every
check passed.
"""

import importlib.abc
import json
import os
import sys

# Running as a script puts this file's directory first on sys.path; its
# sibling modules must not shadow anything.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(
        os.path.abspath(__file__)):
    del sys.path[0]


class _BlockTfcnn(importlib.abc.MetaPathFinder):
    """Makes ``import tfcnn`` fail, whatever is installed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "tfcnn" or fullname.startswith("tfcnn."):
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (blocked: an exported "
                "SavedModel must load without tfcnn)", name=fullname)
        return None


def _check_outputs(outputs, expected, class_names, atol):
    """Returns (max abs difference, list of problems) for one call."""
    import numpy as np

    if "class_map" in outputs:
        return _check_class_map(outputs, expected, atol)
    problems = []
    probabilities = outputs["probabilities"].numpy()
    if probabilities.shape != expected.shape:
        return float("inf"), [
            f"probabilities shape {probabilities.shape}, expected "
            f"{expected.shape}"]
    diff = float(np.max(np.abs(probabilities - expected)))
    if not diff <= atol:
        problems.append(f"probabilities differ from Keras by {diff:.3g} "
                        f"(tolerance {atol:g})")
    ids = outputs["class_ids"].numpy()
    scores = outputs["scores"].numpy()
    gathered = np.take_along_axis(probabilities, ids.astype(np.int64), 1)
    if not np.array_equal(scores, gathered):
        problems.append("scores are not the probabilities of class_ids")
    if np.any(np.diff(scores, axis=1) > 0):
        problems.append("scores are not sorted best first")
    if ids.shape[1] and not np.allclose(scores[:, 0],
                                        probabilities.max(axis=1)):
        problems.append("the first class is not the most probable")
    names = outputs["class_names"].numpy()
    expected_names = np.asarray(
        [name.encode("utf-8") for name in class_names], dtype=object)[ids]
    if not np.array_equal(names.astype(object), expected_names):
        problems.append("class_names do not match class_ids")
    return diff, problems


def _check_class_map(outputs, expected, atol):
    """Segmentation: the class map (and probabilities) at the input size."""
    import numpy as np

    class_map = outputs["class_map"].numpy()
    if class_map.shape != expected.shape[:-1]:
        return float("inf"), [
            f"class_map shape {class_map.shape}, expected "
            f"{expected.shape[:-1]} (the input's height and width)"]
    problems = []
    diff = 0.0
    if "probabilities" in outputs:
        probabilities = outputs["probabilities"].numpy()
        diff = float(np.max(np.abs(probabilities - expected)))
        if not diff <= atol:
            problems.append(f"probabilities differ from Keras by {diff:.3g} "
                            f"(tolerance {atol:g})")
        if not np.array_equal(class_map, probabilities.argmax(-1)):
            problems.append("class_map is not the arg-max of probabilities")
    ranked = np.sort(expected, axis=-1)
    clear = ranked[..., -1] - ranked[..., -2] > 2 * atol
    if not np.array_equal(class_map[clear], expected.argmax(-1)[clear]):
        problems.append("class_map differs from the Keras model's arg-max")
    return diff, problems


def _replay_warmup(loaded, path):
    """Returns problems found replaying TF Serving's warm-up file."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    if not os.path.isfile(path):
        return [f"warm-up file {path} is missing"]
    problems = []
    count = 0
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        name = request.model_spec.signature_name or "serving_default"
        if name not in loaded.signatures:
            problems.append(f"warm-up request names signature {name!r}")
            continue
        inputs = {key: tf.make_ndarray(proto)
                  for key, proto in request.inputs.items()}
        loaded.signatures[name](**inputs)
        count += 1
    if not count:
        problems.append("the warm-up file holds no request")
    return problems


def run(saved_model_dir, cases_dir):
    """Runs every check; returns the report dict."""
    import numpy as np
    import tensorflow as tf

    with open(os.path.join(cases_dir, "cases.json")) as f:
        cases = json.load(f)
    arrays = np.load(os.path.join(cases_dir, "cases.npz"))
    report = {"ok": False, "problems": [], "max_abs_diff": {}}
    loaded = tf.saved_model.load(saved_model_dir)
    missing = sorted(set(cases["signatures"]) - set(loaded.signatures))
    if missing:
        report["problems"].append(f"signatures missing: {missing}")
    for name, spec in cases["signatures"].items():
        if name in missing:
            continue
        key = f"{name}:{spec['input']}"
        if spec["strings"]:
            value = [arrays[f"{key}:{i}"].tobytes()
                     for i in range(spec["count"])]
        else:
            value = arrays[key]
        expected = arrays[f"{name}:expected"]
        worst = 0.0
        for batch in (slice(None), slice(0, 1)):
            inputs = {spec["input"]: tf.constant(value[batch])}
            outputs = loaded.signatures[name](**inputs)
            diff, problems = _check_outputs(
                outputs, expected[batch], cases["class_names"],
                cases["atol"])
            worst = max(worst, diff)
            report["problems"] += [f"{name}: {p}" for p in problems]
        report["max_abs_diff"][name] = worst
    report["problems"] += _replay_warmup(
        loaded, os.path.join(saved_model_dir, "assets.extra",
                             "tf_serving_warmup_requests"))
    report["tfcnn_imported"] = any(
        module == "tfcnn" or module.startswith("tfcnn.")
        for module in sys.modules)
    if report["tfcnn_imported"]:
        report["problems"].append("tfcnn was imported")
    report["ok"] = not report["problems"]
    return report


def main(argv):
    if len(argv) != 2:
        print("usage: selfcheck.py SAVED_MODEL_DIR CASES_DIR",
              file=sys.stderr)
        return 2
    sys.meta_path.insert(0, _BlockTfcnn())
    report = run(argv[0], argv[1])
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
