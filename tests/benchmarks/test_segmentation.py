"""benchmarks/segmentation.py --smoke: segmentation input (PNG and raw
masks) against classification input, and the FCN step, end to end."""

import pytest

from tests.benchmarks.scripts import assert_keys
from tests.benchmarks.scripts import run_benchmark


@pytest.mark.slow
def test_smoke_run_reports_every_figure(tmp_path):
    _, figures = run_benchmark("segmentation.py", "--smoke", "--data",
                               tmp_path / "data", tmp_path=tmp_path)
    assert_keys(figures, [
        "images", "classification_input_images_per_s",
        "segmentation_input_images_per_s", "segmentation_input_ratio",
        "classification_host_images_per_s", "segmentation_host_images_per_s",
        "segmentation_host_ratio", "raw_masks_input_images_per_s",
        "raw_masks_input_ratio", "raw_masks_host_images_per_s",
        "raw_masks_host_ratio", "raw_masks_over_png_masks",
        "segmentation_input_cpu_ratio", "raw_masks_input_cpu_ratio",
        "segmentation_host_cpu_ratio", "raw_masks_host_cpu_ratio",
        "fcn_step_tfcnn_per_s", "fcn_step_keras_per_s", "fcn_step_ratio",
        "fcn_step_window_ratios", "fcn_step_same_ops"])
    # TransposedConv2D("same") adds no operation to Conv2DTranspose's: the
    # FCN step ratio then measures nothing but noise.
    assert figures["fcn_step_same_ops"] is True
    assert figures["segmentation_input_ratio"] > 0
    assert figures["raw_masks_input_ratio"] > 0
