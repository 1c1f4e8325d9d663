"""Tests of tfcnn.train.losses: cross-entropy with label smoothing."""

import keras
import numpy as np
import pytest

from tfcnn.train import losses


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
