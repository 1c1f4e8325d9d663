"""benchmarks/train.py --smoke: the input against synthetic data, and
tfcnn's AlexNet against Keras built-ins, end to end at the smallest size."""

import pytest

from tests.benchmarks.scripts import assert_keys
from tests.benchmarks.scripts import run_benchmark


@pytest.mark.slow
def test_smoke_run_reports_every_figure(tmp_path):
    _, figures = run_benchmark("train.py", "--smoke", tmp_path=tmp_path)
    keys = ["device", "replicas", "alexnet_tfcnn_images_per_second",
            "alexnet_keras_builtin_images_per_second",
            "alexnet_tfcnn_over_keras_builtin"]
    for name in ("alexnet", "resnet50"):
        keys += [f"{name}_synthetic_images_per_second",
                 f"{name}_real_images_per_second",
                 f"{name}_real_over_synthetic"]
    assert_keys(figures, keys)
    assert figures["device"] == "cpu"
    assert all(figures[key] > 0 for key in keys[2:])
