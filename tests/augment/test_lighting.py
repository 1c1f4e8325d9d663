"""Tests for tfcnn.augment.lighting.PCALighting."""

import keras
import numpy as np
import pytest

from tests.layer_contract import assert_preprocessing_layer_contract
from tfcnn.augment import IMAGENET_EIGENVALUES
from tfcnn.augment import IMAGENET_EIGENVECTORS
from tfcnn.augment import PCALighting


def _grey(batch, value=128):
    return np.full((batch, 2, 3, 3), value, np.uint8)


def test_contract():
    model, loaded = assert_preprocessing_layer_contract(
        PCALighting(seed=0), _grey(2), (2, 2, 3, 3), num_weights=2)


def test_identity_at_inference_up_to_the_cast():
    out = PCALighting()(_grey(3, 17))
    assert out.dtype == "float32"
    np.testing.assert_array_equal(out, 17.0)


def test_one_shift_per_image():
    out = PCALighting(seed=1)(_grey(5), training=True).numpy()
    shifts = out - 128.0
    np.testing.assert_allclose(shifts, shifts[:, :1, :1, :].repeat(
        2, 1).repeat(3, 2), atol=1e-4)
    assert np.all(np.abs(shifts[:, 0, 0]).sum(-1) > 0)


def test_added_colour_has_the_expected_covariance():
    # Shift = 255 * P diag(l) a with a ~ N(0, s^2 I), so
    # Cov(shift) = (255 s)^2 P diag(l^2) P^T.
    stddev = 0.1
    layer = PCALighting(stddev=stddev, seed=2)
    out = layer(_grey(20000), training=True).numpy()
    shifts = out[:, 0, 0, :].astype(np.float64) - 128.0
    p = np.asarray(IMAGENET_EIGENVECTORS, np.float64)
    lam = np.asarray(IMAGENET_EIGENVALUES, np.float64)
    expected = (255 * stddev) ** 2 * p @ np.diag(lam ** 2) @ p.T
    np.testing.assert_allclose(shifts.mean(0), 0.0, atol=0.1)
    np.testing.assert_allclose(np.cov(shifts.T), expected, rtol=0.05,
                               atol=0.02)
    # Along each eigenvector the variance is (255 s l_i)^2.
    projected = shifts @ p
    np.testing.assert_allclose(projected.var(0), (255 * stddev * lam) ** 2,
                               rtol=0.05, atol=1e-3)


def test_custom_statistics_are_saved_with_the_model(tmp_path):
    eigenvectors = np.eye(3)[:, [2, 0, 1]]
    layer = PCALighting(eigenvalues=[0.3, 0.0, 0.0],
                        eigenvectors=eigenvectors, seed=3)
    inputs = keras.Input((2, 3, 3), dtype="uint8")
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    weights = {w.name: w.numpy() for w in loaded.layers[1].weights}
    np.testing.assert_allclose(weights["eigenvalues"], [0.3, 0, 0])
    np.testing.assert_allclose(weights["eigenvectors"], eigenvectors)
    # Only the blue channel (the first eigenvector) moves.
    out = loaded.layers[1](_grey(50), training=True).numpy()
    np.testing.assert_allclose(out[..., :2], 128.0)
    assert np.std(out[..., 2]) > 1.0


def test_mixed_precision_output():
    keras.config.set_dtype_policy("mixed_float16")
    out = PCALighting(seed=0)(_grey(2), training=True)
    assert out.dtype == "float16"


@pytest.mark.parametrize("kwargs, message", [
    ({"stddev": -1}, "Received: stddev=-1"),
    ({"eigenvalues": [1, 2]}, "eigenvalues must hold 3"),
    ({"eigenvectors": np.eye(2)}, "eigenvectors must be a 3x3"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PCALighting(**kwargs)


def test_needs_three_channels():
    with pytest.raises(ValueError, match="3 channels"):
        PCALighting()(np.zeros((1, 2, 2, 1)))
