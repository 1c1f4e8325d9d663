"""The layer contract of STYLE.md section 6, for the augmentation layers."""

import json

import keras
import numpy as np


def assert_layer_contract(layer, inputs, expected_shape, *, num_weights,
                          tmp_path):
    """Checks shapes, config round trips, a fit step and a .keras reload.

    Args:
        layer: a built-or-not layer instance.
        inputs: NumPy batch to call it on.
        expected_shape: tuple, output shape for ``inputs``.
        num_weights: int, expected number of (non-trainable) weights.
        tmp_path: pytest's tmp_path for the saved model.
    """
    eager = layer(inputs)
    assert tuple(eager.shape) == expected_shape
    symbolic_in = keras.Input(inputs.shape[1:], dtype=str(inputs.dtype))
    symbolic = layer(symbolic_in)
    assert tuple(symbolic.shape[1:]) == expected_shape[1:]
    assert tuple(layer.compute_output_shape(
        (None,) + inputs.shape[1:]))[1:] == expected_shape[1:]
    assert len(layer.weights) == num_weights
    assert not layer.trainable_weights

    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(json.loads(
        json.dumps(serialized)))
    assert again.get_config() == config

    features = keras.layers.GlobalAveragePooling2D()(symbolic)
    outputs = keras.layers.Dense(2)(features)
    model = keras.Model(symbolic_in, outputs)
    model.compile("sgd", "mse")
    model.fit(inputs, np.zeros((len(inputs), 2)), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0),
                               model.predict(inputs, verbose=0), rtol=1e-6)
    return model, loaded
