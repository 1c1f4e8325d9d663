"""Tests of tfcnn.train.metrics: top-1 and top-5 accuracy."""

import numpy as np
import pytest

from tfcnn.train import metrics


def test_metrics_are_named_and_count_top5():
    probabilities = np.array([[0.1, 0.2, 0.3, 0.15, 0.05, 0.2],
                              [0.5, 0.2, 0.12, 0.08, 0.01, 0.09]], np.float32)
    labels = np.array([2, 4])  # top-1 right; top-5 of the second: no
    top1, top5 = metrics.build_metrics()
    top1.update_state(labels, probabilities)
    top5.update_state(labels, probabilities)
    assert (top1.name, top5.name) == ("accuracy", "top5_accuracy")
    assert float(top1.result()) == pytest.approx(0.5)
    assert float(top5.result()) == pytest.approx(0.5)
    dense_top1, _ = metrics.build_metrics(dense_labels=True)
    dense_top1.update_state(np.eye(6)[labels], probabilities)
    assert float(dense_top1.result()) == pytest.approx(0.5)
