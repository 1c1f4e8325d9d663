"""Tests for tfcnn.augment.mean.MeanSubtraction."""

import keras
import numpy as np
import pytest

from tests.layer_contract import assert_preprocessing_layer_contract
from tfcnn.augment import IMAGENET_MEAN
from tfcnn.augment import IMAGENET_STD
from tfcnn.augment import MeanSubtraction

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
MEAN_IMAGE = RNG.uniform(0, 255, (5, 5, 3)).astype(np.float32)


@pytest.mark.parametrize("mode, num_weights", [
    ("image", 1), ("channel", 2), ("none", 0)])
def test_contract(mode, num_weights):
    layer = MeanSubtraction(mode, mean_size=5 if mode == "image" else None)
    assert_preprocessing_layer_contract(layer, IMAGES, (2, 4, 5, 3),
                                        num_weights=num_weights)


def test_image_mode_subtracts_the_stored_mean_image(tmp_path):
    layer = MeanSubtraction("image", mean=MEAN_IMAGE)
    inputs = keras.Input((4, 5, 3), dtype="uint8")
    model = keras.Model(inputs, layer(inputs))
    expected = IMAGES.astype(np.float32) - MEAN_IMAGE[:4]
    np.testing.assert_allclose(model(IMAGES), expected, rtol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(IMAGES), expected, rtol=1e-6)


def test_channel_mode_standardizes_with_the_stored_stats():
    mean, std = [10.0, 20.0, 30.0], [2.0, 4.0, 8.0]
    out = MeanSubtraction("channel", mean=mean, std=std)(IMAGES)
    expected = (IMAGES - np.float32(mean)) / np.float32(std)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_defaults_are_imagenet_channel_statistics():
    out = MeanSubtraction("image", mean_size=6)(IMAGES)
    np.testing.assert_allclose(out, IMAGES - np.float32(IMAGENET_MEAN),
                               rtol=1e-6)
    out = MeanSubtraction("channel")(IMAGES)
    np.testing.assert_allclose(
        out, (IMAGES - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD),
        rtol=1e-5)


def test_none_mode_scales_to_unit_range():
    out = MeanSubtraction("none")(IMAGES)
    np.testing.assert_allclose(out, IMAGES / 255.0, rtol=1e-6)


@pytest.mark.parametrize("policy, dtype, rtol", [
    ("mixed_float16", "float16", 2**-11), ("mixed_bfloat16", "bfloat16",
                                           2**-8)])
def test_output_in_the_compute_dtype(policy, dtype, rtol):
    keras.config.set_dtype_policy(policy)
    layer = MeanSubtraction("image", mean=MEAN_IMAGE)
    out = layer(IMAGES)
    assert out.dtype == dtype
    # Subtracted in float32, rounded once at the end: within half an ulp.
    expected = IMAGES.astype(np.float32) - MEAN_IMAGE[:4]
    np.testing.assert_allclose(np.float32(out), expected, rtol=rtol,
                               atol=1e-2)


def test_smaller_inputs_get_the_centre_of_the_mean_image(tmp_path):
    mean = RNG.uniform(0, 255, (8, 8, 3)).astype(np.float32)
    layer = MeanSubtraction("image", mean=mean)
    inputs = keras.Input((4, 5, 3), dtype="uint8")
    model = keras.Model(inputs, layer(inputs))
    expected = IMAGES - mean[2:6, 1:6]
    np.testing.assert_allclose(model(IMAGES), expected, rtol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(IMAGES), expected, rtol=1e-6)


def test_mean_image_of_the_wrong_size():
    with pytest.raises(ValueError, match="larger than the 3x3 mean image"):
        MeanSubtraction("image", mean=np.zeros((3, 3, 3)))(IMAGES)
    with pytest.raises(ValueError, match="square"):
        MeanSubtraction("image", mean=np.zeros((4, 5, 3)))


def test_bad_mode_and_std():
    with pytest.raises(ValueError, match="Received: mode='pixel'"):
        MeanSubtraction("pixel")
    with pytest.raises(ValueError, match="std must be > 0"):
        MeanSubtraction("channel", std=[1.0, 0.0, 1.0])


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_keras_applications_modes_equal_preprocess_input(tmp_path, mode):
    from keras.applications import imagenet_utils

    images = IMAGES.astype(np.float32)
    expected = imagenet_utils.preprocess_input(images.copy(), mode=mode)
    inputs = keras.Input(IMAGES.shape[1:], dtype="uint8")
    model = keras.Model(inputs, MeanSubtraction(mode)(inputs))
    np.testing.assert_array_equal(model(IMAGES), expected)
    # The mode travels in the config: a saved model preprocesses alike.
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(IMAGES), expected)
