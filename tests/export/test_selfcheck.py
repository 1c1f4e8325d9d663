"""Tests of the standalone SavedModel check (the parts that need no model).

The whole check runs in ``tests/export/test_publish.py`` through
``verify_saved_model``.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfcnn.export import selfcheck


def test_blocker_refuses_tfcnn_and_only_tfcnn():
    blocker = selfcheck._BlockTfcnn()
    for name in ("tfcnn", "tfcnn.export"):
        with pytest.raises(ModuleNotFoundError, match="blocked"):
            blocker.find_spec(name)
    assert blocker.find_spec("tfcnnx") is None
    assert blocker.find_spec("numpy") is None


def test_the_script_cannot_import_tfcnn_in_its_process():
    code = (f"import runpy, sys; sys.argv = ['selfcheck.py']; "
            f"sys.path.insert(0, {os.getcwd()!r}); "
            f"import importlib; m = runpy.run_path({selfcheck.__file__!r}); "
            "sys.meta_path.insert(0, m['_BlockTfcnn']()); "
            "import tfcnn")
    done = subprocess.run([sys.executable, "-I", "-c", code],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "blocked" in done.stderr


def _outputs(probabilities, ids, names):
    probabilities = np.asarray(probabilities, np.float32)
    ids = np.asarray(ids, np.int32)
    return {
        "probabilities": tf.constant(probabilities),
        "class_ids": tf.constant(ids),
        "scores": tf.constant(np.take_along_axis(probabilities, ids, 1)),
        "class_names": tf.constant(names),
    }


def test_check_outputs_accepts_a_consistent_answer():
    out = _outputs([[0.2, 0.8]], [[1, 0]], [[b"b", b"a"]])
    diff, problems = selfcheck._check_outputs(
        out, np.array([[0.2, 0.8]], np.float32), ["a", "b"], 1e-5)
    assert problems == [] and diff == 0.0


def test_check_outputs_reports_each_inconsistency():
    out = _outputs([[0.2, 0.8]], [[0, 1]], [[b"b", b"a"]])
    diff, problems = selfcheck._check_outputs(
        out, np.array([[0.3, 0.7]], np.float32), ["a", "b"], 1e-5)
    assert diff == pytest.approx(0.1)
    text = " ".join(problems)
    for words in ("differ from Keras", "not sorted", "most probable",
                  "class_names"):
        assert words in text
