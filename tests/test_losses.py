"""Tests of tfcnn.losses: cross-entropy with label smoothing."""

import keras
import numpy as np
import pytest

from tfcnn import losses


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 5, 6).astype(np.int32)
    return probabilities, labels


def test_sparse_labels_match_keras(batch):
    probabilities, labels = batch
    expected = keras.losses.SparseCategoricalCrossentropy()(
        labels, probabilities)
    got = losses.CrossEntropy()(labels, probabilities)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_label_smoothing_on_sparse_labels_matches_float64(batch):
    probabilities, labels = batch
    s = 0.1
    target = np.full((6, 5), s / 5) + (1 - s) * np.eye(5)[labels]
    expected = -(target * np.log(probabilities.astype(np.float64))).sum(1)
    got = losses.CrossEntropy(label_smoothing=s)(labels, probabilities)
    np.testing.assert_allclose(got, expected.mean(), rtol=1e-5)
    dense = losses.CrossEntropy(label_smoothing=s)(
        np.eye(5, dtype=np.float32)[labels], probabilities)
    np.testing.assert_allclose(dense, got, rtol=1e-6)


def test_loss_config_round_trips():
    loss = losses.CrossEntropy(label_smoothing=0.2)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, losses.CrossEntropy)
    assert again.label_smoothing == 0.2


def test_bad_smoothing_is_named():
    with pytest.raises(ValueError, match="label_smoothing=1.5"):
        losses.CrossEntropy(label_smoothing=1.5)


def _pixels(seed=0, shape=(2, 5, 6), classes=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(*shape, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, classes, shape)
    return probabilities.astype(np.float32), labels.astype(np.uint8)


def test_pixel_loss_is_the_mean_over_non_void_pixels():
    probabilities, labels = _pixels()
    void = np.zeros(labels.shape, bool)
    void[0, :2] = void[1, :, 4:] = True
    labels[void] = 255
    valid = ~void
    picked = np.take_along_axis(
        probabilities, np.where(valid, labels, 0)[..., None].astype(int),
        -1)[..., 0]
    expected = -np.log(picked[valid].astype(np.float64)).mean()
    loss = losses.PixelCrossEntropy()
    assert float(loss(labels, probabilities)) == pytest.approx(expected,
                                                               rel=1e-5)
    # Void pixels change nothing, whatever is predicted there.
    other = probabilities.copy()
    other[void] = np.roll(other[void], 1, axis=-1)
    assert float(loss(labels, other)) == pytest.approx(expected, rel=1e-5)
    # Class weights: the weighted mean.
    weights = np.array([0.5, 1.0, 2.0, 4.0])
    w = weights[np.where(valid, labels, 0)][valid]
    weighted = losses.PixelCrossEntropy(class_weights=weights)
    assert float(weighted(labels, probabilities)) == pytest.approx(
        (w * -np.log(picked[valid])).sum() / w.sum(), rel=1e-5)
    restored = losses.PixelCrossEntropy.from_config(weighted.get_config())
    assert restored.class_weights == list(weights)
    # All void: zero, not NaN.
    assert float(loss(np.full_like(labels, 255), probabilities)) == 0.0
