"""Tests of tfcnn.metrics: top-1 and top-5 accuracy."""

import numpy as np
import pytest

from tfcnn import metrics


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


@pytest.mark.parametrize("dense", [False, True])
def test_top5_only_where_five_is_fewer_than_the_classes(dense):
    names = [m.name for m in metrics.build_metrics(dense, num_classes=5)]
    assert names == ["accuracy"]  # top-5 of 5 classes is always 1
    names = [m.name for m in metrics.build_metrics(dense, num_classes=6)]
    assert names == ["accuracy", "top5_accuracy"]


def _confusion(labels, predicted, classes):
    valid = labels != 255
    return np.bincount(classes * labels[valid].astype(int)
                       + predicted[valid], minlength=classes ** 2).reshape(
        classes, classes)


def test_mean_iou_and_pixel_accuracy_match_numpy_and_ignore_void():
    rng = np.random.default_rng(0)
    classes = 5
    labels = rng.integers(0, classes - 1, (3, 8, 7)).astype(np.uint8)
    labels[0, :3] = 255
    logits = rng.normal(size=(3, 8, 7, classes)).astype(np.float32)
    logits[..., 0] += 1.0  # class 0 often predicted; class 4 never labelled
    predicted = logits.argmax(-1)
    matrix = _confusion(labels, predicted, classes)
    union = matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    present = union > 0
    expected_iou = (np.diag(matrix)[present] / union[present]).mean()
    accuracy, mean_iou = metrics.build_segmentation_metrics(classes)
    for metric in (accuracy, mean_iou):
        metric.update_state(labels, logits)
    assert (accuracy.name, mean_iou.name) == ("pixel_accuracy", "mean_iou")
    assert float(mean_iou.result()) == pytest.approx(expected_iou, rel=1e-6)
    assert float(accuracy.result()) == pytest.approx(
        np.trace(matrix) / matrix.sum(), rel=1e-6)
    per_class = metrics.per_class_iou(mean_iou.total_cm.numpy())
    np.testing.assert_allclose(
        [v for v in per_class if v is not None],
        np.diag(matrix)[present] / union[present])
    # Whatever is predicted on void pixels changes neither figure.
    other = logits.copy()
    other[0, :3] = np.roll(other[0, :3], 2, axis=-1)
    again = metrics.build_segmentation_metrics(classes)
    for metric in again:
        metric.update_state(labels, other)
    assert float(again[1].result()) == pytest.approx(expected_iou, rel=1e-6)
    assert float(again[0].result()) == pytest.approx(
        float(accuracy.result()), rel=1e-6)
    assert metrics.per_class_iou([[2, 0], [0, 0]]) == [1.0, None]
