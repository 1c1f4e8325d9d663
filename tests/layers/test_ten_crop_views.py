"""Tests for tfcnn.layers.ten_crop_views and tfcnn.layers.average_views."""

import keras
import numpy as np
import tensorflow as tf

from tfcnn.layers import AverageViews
from tfcnn.layers import TenCropViews
from tfcnn.layers.ten_crop_views import ten_crop_views

S, C = 10, 6
IMAGES = np.random.default_rng(0).integers(0, 256, (3, S, S, 3),
                                           dtype=np.uint8)


def numpy_views(images, size):
    """The ten views in NumPy: corners, centre, then their mirrors."""
    bottom, right = images.shape[1] - size, images.shape[2] - size
    starts = [(0, 0), (0, right), (bottom, 0), (bottom, right),
              (bottom // 2, right // 2)]
    views = [images[:, top:top + size, left:left + size]
             for top, left in starts]
    return views + [v[:, :, ::-1] for v in views]


def test_views_are_corners_centre_and_mirrors():
    views = ten_crop_views(tf.constant(IMAGES), C)
    for got, want in zip(views, numpy_views(IMAGES, C)):
        np.testing.assert_array_equal(got, want)


def test_ten_crop_views_stacks_view_major():
    stacked = TenCropViews(C)(IMAGES).numpy()
    assert stacked.shape == (10 * 3, C, C, 3)
    for v, want in enumerate(numpy_views(IMAGES, C)):
        np.testing.assert_array_equal(stacked[v * 3:(v + 1) * 3], want)


def test_average_views_is_the_mean_over_views():
    predictions = np.random.default_rng(1).random((10 * 3, 4), np.float32)
    got = AverageViews(10)(predictions).numpy()
    np.testing.assert_allclose(got, predictions.reshape(10, 3, 4).mean(0),
                               rtol=1e-6)


def test_a_model_with_both_layers_reloads_from_a_keras_file(tmp_path):
    # Both change the batch size, so the shared contract's fit step does
    # not apply; their configs and a .keras round trip still must.
    inputs = keras.Input((S, S, 3), dtype="uint8")
    views = TenCropViews(C, name="views")(inputs)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(views))
    x = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, AverageViews(10, name="average")(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(IMAGES).numpy(),
                                  model(IMAGES).numpy())
    assert loaded.get_layer("views").get_config()["size"] == C
    assert loaded.get_layer("average").get_config()["num_views"] == 10
    assert keras.saving.get_registered_name(TenCropViews) == (
        "tfcnn>TenCropViews")
    assert keras.saving.get_registered_name(AverageViews) == (
        "tfcnn>AverageViews")
