"""Tests for tfcnn.ten_crop: 10-crop evaluation of a training model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layers.test_ten_crop_views import numpy_views
from tfcnn import augment
from tfcnn import ten_crop
from tfcnn.recipe import AugmentConfig

S, C, K = 10, 6, 7
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (3, S, S, 3), dtype=np.uint8)
MEAN = RNG.uniform(0, 255, (S, S, 3)).astype(np.float32)


class _Stats:
    mean_image = MEAN
    eigenvalues = np.float32([1.0, 0.5, 0.1])
    eigenvectors = np.eye(3, dtype=np.float32)


def _training_model():
    # Scaled inputs keep the softmax away from saturation, where tied
    # probabilities would make top-5 depend on tie-breaking.
    keras.utils.set_random_seed(0)
    network = keras.Sequential([
        keras.Input((C, C, 3)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Flatten(),
        keras.layers.Dense(K, activation="softmax")], name="network")
    inputs = keras.Input((S, S, 3), dtype="uint8", name="image")
    x = inputs
    for layer in augment.build_preprocessing(AugmentConfig(), crop_size=C,
                                             stats=_Stats()):
        x = layer(x)
    return keras.Model(inputs, network(x)), network


def test_prediction_is_the_average_of_the_ten_views():
    model, network = _training_model()
    wrapper = ten_crop.ten_crop_model(model)
    # Every view has the centre of the mean image subtracted (cuda-convnet).
    centre = MEAN[2:8, 2:8]
    expected = np.mean([network(view.astype(np.float32) - centre).numpy()
                        for view in numpy_views(IMAGES, C)], axis=0)
    got = wrapper(IMAGES).numpy()
    assert got.shape == (3, K)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-5)
    # Not just the centre view.
    assert not np.allclose(got, model(IMAGES).numpy(), atol=1e-6)


def test_evaluate_reports_top1_and_top5():
    model, _ = _training_model()
    wrapper = ten_crop.ten_crop_model(model)
    images = np.concatenate([IMAGES] * 4)
    probabilities = wrapper(images).numpy()
    labels = np.arange(len(images)) % K
    dataset = tf.data.Dataset.from_tensor_slices(
        (images, labels.astype(np.int32))).batch(5)
    metrics = ten_crop.evaluate_ten_crop(model, dataset)
    ranks = (-probabilities).argsort(-1)
    top1 = np.mean(ranks[:, 0] == labels)
    top5 = np.mean([label in row[:5] for label, row in zip(labels, ranks)])
    # Keras clips probabilities to [1e-7, 1 - 1e-7] before the log.
    chosen = probabilities[np.arange(len(labels)), labels]
    loss = -np.mean(np.log(np.clip(chosen, 1e-7, 1 - 1e-7)))
    assert metrics == pytest.approx(
        {"ten_crop_accuracy": top1, "ten_crop_top5_accuracy": top5,
         "ten_crop_loss": loss, "views": 10}, rel=1e-5)


def test_without_flips_the_five_crops_alone():
    # A model trained without flips never saw a mirror image.
    model, network = _training_model()
    wrapper = ten_crop.ten_crop_model(model, flip=False)
    centre = MEAN[2:8, 2:8]
    expected = np.mean([network(view.astype(np.float32) - centre).numpy()
                        for view in numpy_views(IMAGES, C)[:5]], axis=0)
    np.testing.assert_allclose(wrapper(IMAGES).numpy(), expected,
                               rtol=1e-5, atol=1e-7)
    dataset = tf.data.Dataset.from_tensor_slices(
        (IMAGES, np.int32([0, 1, 2]))).batch(2)
    assert ten_crop.evaluate_ten_crop(model, dataset,
                                      flip=False)["views"] == 5


def test_wrapper_survives_save_and_load(tmp_path):
    model, _ = _training_model()
    wrapper = ten_crop.ten_crop_model(model)
    wrapper.save(tmp_path / "ten.keras")
    loaded = keras.models.load_model(tmp_path / "ten.keras")
    np.testing.assert_allclose(loaded(IMAGES), wrapper(IMAGES), rtol=1e-6)


def test_model_without_the_crop_layer():
    inputs = keras.Input((S, S, 3))
    model = keras.Model(inputs, keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="exactly one RandomOrCentreCrop"):
        ten_crop.ten_crop_model(model)
