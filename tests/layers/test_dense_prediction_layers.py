"""PadToMultiple, CropLike and ResizeLike: dense prediction at any size."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layer_contract import assert_layer_contract
from tfcnn.layers import CropLike
from tfcnn.layers import PadToMultiple
from tfcnn.layers import ResizeLike


def test_pad_to_multiple_contract_and_values():
    assert_layer_contract(PadToMultiple, dict(multiple=8), (2, 9, 16, 3),
                          (2, 16, 16, 3), 0)
    x = np.arange(2 * 5 * 3, dtype="float32").reshape(1, 5, 6, 1)
    y = PadToMultiple(4)(x).numpy()
    assert y.shape == (1, 8, 8, 1)
    np.testing.assert_array_equal(y[:, :5, :6], x)
    assert not y[:, 5:].any() and not y[:, :, 6:].any()
    with pytest.raises(ValueError, match="multiple"):
        PadToMultiple(0)


def _round_trip(layer):
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(
        layer)))
    return keras.saving.deserialize_keras_object(config)


def test_crop_like_undoes_the_padding_at_any_size():
    image = keras.Input((None, None, 3))
    padded = PadToMultiple(32)(image)
    scores = keras.layers.Conv2D(2, 1, name="score")(padded)
    model = keras.Model(image, CropLike(name="crop")([scores, image]))
    for height, width in ((32, 32), (33, 70), (5, 64)):
        x = np.random.default_rng(0).random((2, height, width, 3))
        y = model(x.astype("float32"))
        assert tuple(y.shape) == (2, height, width, 2)
        np.testing.assert_allclose(
            y, model.get_layer("score")(x.astype("float32")), atol=1e-6)
    assert model.compute_output_shape((2, 9, 10, 3)) == (2, 9, 10, 2)
    assert type(_round_trip(model.get_layer("crop"))) is CropLike


def test_resize_like_matches_tf_image_resize_and_broadcasts():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 5, 3)).astype("float32")
    reference = np.zeros((2, 16, 20, 1), "float32")
    for method in ("bilinear", "nearest"):
        layer = _round_trip(ResizeLike(interpolation=method))
        np.testing.assert_allclose(
            layer([x, reference]),
            tf.image.resize(x, (16, 20), method=method), atol=1e-6)
    pooled = x[:, :1, :1, :]
    y = ResizeLike()([pooled, reference]).numpy()
    np.testing.assert_allclose(y, np.broadcast_to(pooled, (2, 16, 20, 3)),
                               atol=1e-6)
    half = ResizeLike(dtype="mixed_float16")([x, reference])
    assert half.dtype == "float16"
    with pytest.raises(ValueError, match="interpolation"):
        ResizeLike(interpolation="area")
