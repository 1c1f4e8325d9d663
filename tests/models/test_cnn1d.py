"""1-D CNNs: the time-series FCN and Kim's text CNN."""

import keras
import numpy as np

import tfcnn.models


def test_time_series_model_runs_on_any_length():
    model = tfcnn.models.build("cnn1d", input_shape=(None, 3),
                               num_classes=5)
    for steps in (10, 37):
        x = np.random.default_rng(0).standard_normal((2, steps, 3))
        assert model(x.astype("float32")).shape == (2, 5)
    kernels = [model.get_layer(f"conv{i}_conv").kernel.shape
               for i in (1, 2, 3)]
    assert kernels == [(8, 3, 128), (5, 128, 256), (3, 256, 128)]


def test_time_series_headless_keeps_or_pools_time():
    kwargs = dict(input_shape=(16, 2), include_top=False)
    assert tfcnn.models.build("cnn1d", **kwargs).output_shape == (
        None, 16, 128)
    assert tfcnn.models.build("cnn1d", pooling="max", **kwargs
                              ).output_shape == (None, 128)


def test_text_cnn_parameter_count():
    model = tfcnn.models.build("textcnn", input_shape=(None,),
                               num_classes=2, vocab_size=1000,
                               embedding_dim=16, filters=10)
    expected = 1000 * 16 + sum(k * 16 * 10 + 10 for k in (3, 4, 5)) + (
        30 * 2 + 2)
    assert model.count_params() == expected
    tokens = np.random.default_rng(0).integers(0, 1000, (3, 20))
    assert model(tokens).shape == (3, 2)
    assert model.get_layer("conv5_pool").output.shape == (None, 10)
    assert isinstance(model.get_layer("conv5_pool"),
                      keras.layers.GlobalMaxPooling1D)
