"""benchmarks/models.py --smoke: build against describe, and forward speed
against keras.applications."""

import pytest

from tests.benchmarks.scripts import assert_keys
from tests.benchmarks.scripts import run_benchmark


@pytest.mark.slow
def test_smoke_run_reports_every_figure(tmp_path):
    _, figures = run_benchmark("models.py", "--smoke", tmp_path=tmp_path)
    assert_keys(figures, ["build_vs_describe", "list_all_s",
                          "list_all_models", "forward_images_per_s",
                          "batch_size", "image_size", "repeats"])
    for name in ("vgg16", "resnet50"):
        assert_keys(figures["build_vs_describe"][name],
                    ["build_s", "describe_s", "ratio"])
        assert_keys(figures["forward_images_per_s"][name],
                    ["tfcnn", "keras_applications", "ratio"])
