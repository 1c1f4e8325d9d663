"""Tests for tfcnn.augment.mix.mix_batches (MixUp / CutMix over batches)."""

import numpy as np
import pytest
import tensorflow as tf

from tfcnn.augment import mix_batches
from tfcnn.recipe import AugmentConfig

K = 4


def _batches(num_batches=4, batch=8):
    # Image j of the dataset is constant 10 * j: mixes are recognizable.
    values = np.arange(num_batches * batch) % 25 * 10
    images = np.broadcast_to(values[:, None, None, None].astype(np.uint8),
                             (len(values), 6, 6, 3))
    labels = np.arange(len(values)) % K
    return tf.data.Dataset.from_tensor_slices(
        (images, labels.astype(np.int32))).batch(batch)


def test_without_alphas_only_the_labels_become_one_hot():
    (images, labels), = mix_batches(_batches(1), AugmentConfig(), K).take(1)
    assert images.dtype == tf.uint8
    np.testing.assert_array_equal(labels, np.eye(K)[np.arange(8) % K])


@pytest.mark.parametrize("config", [
    AugmentConfig(mixup_alpha=0.4), AugmentConfig(cutmix_alpha=1.0),
    AugmentConfig(mixup_alpha=0.4, cutmix_alpha=1.0)])
def test_soft_labels_match_the_mixed_images(config):
    dataset = mix_batches(_batches(), config, K, seed=1)
    assert dataset.element_spec[0].dtype == tf.uint8
    assert dataset.element_spec[1].dtype == tf.float32
    mixed_any = False
    for images, labels in dataset:
        images, labels = images.numpy(), labels.numpy()
        assert images.shape == (8, 6, 6, 3)
        assert labels.shape == (8, K)
        np.testing.assert_allclose(labels.sum(1), 1.0, atol=1e-5)
        assert np.all(labels >= 0)
        mixed_any |= bool(np.any((labels > 0.01) & (labels < 0.99)))
    assert mixed_any


def test_mixup_images_are_the_label_weighted_blend():
    # Two classes with images 0 and 250: the blend's value says the weight.
    images = np.concatenate([np.zeros((4, 2, 2, 3)),
                             np.full((4, 2, 2, 3), 250)]).astype(np.uint8)
    labels = np.int32([0] * 4 + [1] * 4)
    dataset = tf.data.Dataset.from_tensors((images, labels))
    (out, soft), = mix_batches(dataset, AugmentConfig(mixup_alpha=1.0), 2,
                               seed=3).take(1)
    weight_of_class_1 = out.numpy()[:, 0, 0, 0] / 250.0
    np.testing.assert_allclose(weight_of_class_1, soft.numpy()[:, 1],
                               atol=1 / 250 + 1e-4)


def test_seeded_runs_repeat():
    config = AugmentConfig(mixup_alpha=0.4, cutmix_alpha=1.0)
    first = [y.numpy() for _, y in mix_batches(_batches(), config, K, 5)]
    again = [y.numpy() for _, y in mix_batches(_batches(), config, K, 5)]
    for a, b in zip(first, again):
        np.testing.assert_allclose(a, b)


def test_bad_num_classes():
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        mix_batches(_batches(), AugmentConfig(), 0)
