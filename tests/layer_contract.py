"""The contract every tfcnn layer keeps, as test helpers.

``assert_layer_contract`` is modelled on Keras' ``run_layer_test`` and adds
a training step and a ``.keras`` file round trip;
``assert_preprocessing_layer_contract`` checks the same for a configured
layer instance without trainable weights (the ``tfcnn.augment`` layers, fed
uint8 images) by training a small head after it. ``assert_mixed_precision``
checks the dtype policies, and ``assert_mirrored_step`` a model (of one or
several layers) under MirroredStrategy over the two logical CPUs that
``tests/conftest.py`` sets up.
"""

import functools
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tfcnn.train.strategy import mirrored


def random_input(shape, seed=0, scale=1.0):
    """A float32 array of standard normal values times ``scale``."""
    return (np.random.default_rng(seed).standard_normal(shape)
            * scale).astype(np.float32)


def assert_layer_contract(cls, init_kwargs, input_shape,
                          expected_output_shape, expected_num_weights,
                          expected_num_trainable_weights=None,
                          input_scale=1.0):
    """Checks shapes, weights, config round trips, a fit step and a save.

    Args:
        cls: the layer class.
        init_kwargs: dict, constructor arguments.
        input_shape: tuple of ints, a concrete input shape (batch first).
        expected_output_shape: tuple of ints, the output for that input.
        expected_num_weights: int, ``len(layer.weights)`` once built.
        expected_num_trainable_weights: int, defaults to
            ``expected_num_weights``.
        input_scale: float, scale of the random input. Defaults to 1.
    """
    x = random_input(input_shape, scale=input_scale)

    # Eager call and compute_output_shape.
    layer = cls(**init_kwargs)
    y = layer(x)
    assert tuple(y.shape) == tuple(expected_output_shape)
    assert (tuple(layer.compute_output_shape(input_shape))
            == tuple(expected_output_shape))
    assert len(layer.weights) == expected_num_weights
    if expected_num_trainable_weights is None:
        expected_num_trainable_weights = expected_num_weights
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))

    # Symbolic call with a known shape, and with unknown batch and spatial
    # sizes (only the channel axis, wherever it is, stays known).
    symbolic = cls(**init_kwargs)(
        keras.Input(batch_shape=input_shape))
    assert tuple(symbolic.shape) == tuple(expected_output_shape)
    unknown_shape = _unknown_except_channels(
        input_shape, init_kwargs.get("data_format"))
    unknown_layer = cls(**init_kwargs)
    unknown_out = unknown_layer(keras.Input(batch_shape=unknown_shape))
    assert (tuple(unknown_out.shape)
            == tuple(unknown_layer.compute_output_shape(unknown_shape)))
    assert unknown_out.shape[0] is None

    _assert_config_round_trips(layer)

    # One training step, then a .keras round trip with identical outputs.
    model = _model(cls, init_kwargs, input_shape)
    target = np.zeros((input_shape[0],) + tuple(expected_output_shape[1:]),
                      np.float32)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    history = model.fit(x, target, batch_size=input_shape[0], epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"][0])
    loaded = _assert_reloads_identically(model, x)
    assert type(loaded.layers[-1]) is cls


def assert_preprocessing_layer_contract(layer, inputs, expected_shape, *,
                                        num_weights):
    """The contract for a configured layer with no trainable weights.

    Checks the eager, symbolic and computed output shapes, the weight
    counts, the config round trips, a training step of a small head after
    the layer, and a ``.keras`` reload with identical predictions.

    Args:
        layer: a layer instance (built or not).
        inputs: NumPy batch to call it on (uint8 images allowed).
        expected_shape: tuple, output shape for ``inputs``.
        num_weights: int, expected number of (non-trainable) weights.

    Returns:
        ``(model, loaded)``: the trained model with the head and its
        reloaded copy.
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

    _assert_config_round_trips(layer)

    features = keras.layers.GlobalAveragePooling2D()(symbolic)
    outputs = keras.layers.Dense(2)(features)
    model = keras.Model(symbolic_in, outputs)
    model.compile("sgd", "mse")
    model.fit(inputs, np.zeros((len(inputs), 2)), epochs=1, verbose=0)
    return model, _assert_reloads_identically(model, inputs)


def assert_mixed_precision(cls, init_kwargs, input_shape, policy,
                           input_scale=1.0, rtol=2e-2, atol=2e-2):
    """Checks a layer under a mixed dtype policy against float32.

    The mixed layer gets the float32 layer's weights; its output must have
    the policy's compute dtype, be finite, and be close to the float32
    output (to the 16-bit type's precision). Its gradient must be finite.

    Args:
        cls: the layer class.
        init_kwargs: dict, constructor arguments.
        input_shape: tuple of ints, the input shape.
        policy: str, "mixed_float16" or "mixed_bfloat16".
        input_scale: float, scale of the random input; large values probe
            for overflow. Defaults to 1.
        rtol: float, relative tolerance. Defaults to 2e-2.
        atol: float, absolute tolerance (relative to the output's largest
            magnitude). Defaults to 2e-2.
    """
    x = random_input(input_shape, scale=input_scale)
    reference = cls(**init_kwargs)
    expected = keras.ops.convert_to_numpy(reference(x))
    mixed = cls(**init_kwargs, dtype=policy)
    mixed.build(input_shape)
    for target, source in zip(mixed.weights, reference.weights):
        target.assign(source)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = mixed(xt)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
    grads = tape.gradient(loss, [xt] + mixed.trainable_weights)
    assert y.dtype == keras.DTypePolicy(policy).compute_dtype
    got = keras.ops.convert_to_numpy(tf.cast(y, tf.float32))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=rtol,
                               atol=atol * np.abs(expected).max())
    for grad in grads:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(grad)))


def assert_numerical_gradient(fn, inputs, rtol=1e-6, atol=1e-7):
    """Checks the gradient of ``fn`` against finite differences.

    Args:
        fn: callable on ``inputs`` (a layer or a function), float64.
        inputs: list of float64 tensors, small (every element is perturbed).
        rtol: float, relative tolerance. Defaults to 1e-6.
        atol: float, absolute tolerance. Defaults to 1e-7.
    """
    # Through tf.function: the perturbed evaluations run ~5x faster.
    theoretical, numerical = tf.test.compute_gradient(tf.function(fn),
                                                      inputs)
    for got, expected in zip(theoretical, numerical):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def assert_mirrored_step(build_model, input_shape, seed=0):
    """One SGD step under MirroredStrategy equals the same step on one device.

    Uses the two logical CPU devices from ``tests/conftest.py``; the batch
    is split between the replicas and the gradients all-reduced, so the
    predictions and weights after the step must match a single-device step.

    Args:
        build_model: callable returning an uncompiled Keras model; called
            once per strategy, inside its scope, after seeding.
        input_shape: tuple of ints, batch first, batch even.
        seed: int, the seed of input, target and initial weights.
    """
    x = random_input(input_shape, seed=seed)
    results = []
    for strategy in (tf.distribute.get_strategy(), _mirrored_strategy()):
        keras.utils.set_random_seed(seed)
        with strategy.scope():
            model = build_model()
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        target = random_input((input_shape[0],) + model.output_shape[1:],
                              seed=seed + 1)
        model.fit(x, target, batch_size=input_shape[0], epochs=1,
                  shuffle=False, verbose=0)
        results.append([model.predict(x, batch_size=input_shape[0],
                                      verbose=0)]
                       + [keras.ops.convert_to_numpy(w)
                          for w in model.weights])
    for single, replicated in zip(*results):
        np.testing.assert_allclose(replicated, single, rtol=1e-5,
                                   atol=1e-6)


@functools.lru_cache(maxsize=None)
def _mirrored_strategy():
    return mirrored(["/cpu:0", "/cpu:1"])


def _assert_config_round_trips(layer):
    """get_config -> JSON -> from_config, and Keras' serialization."""
    cls = type(layer)
    config = layer.get_config()
    text = json.dumps(config, sort_keys=True)
    rebuilt = cls.from_config(json.loads(text))
    assert json.dumps(rebuilt.get_config(), sort_keys=True) == text
    serialized = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(serialized)))
    assert type(restored) is cls
    assert json.dumps(restored.get_config(), sort_keys=True) == text


def _assert_reloads_identically(model, x):
    """Saves ``model`` as ``.keras``, loads it, compares outputs on ``x``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)),
        keras.ops.convert_to_numpy(model(x)))
    return loaded


def _model(cls, init_kwargs, input_shape):
    inputs = keras.Input(shape=input_shape[1:])
    return keras.Model(inputs, cls(**init_kwargs)(inputs))


def _unknown_except_channels(input_shape, data_format):
    channel_axis = 1 if data_format == "channels_first" else -1
    shape = [None] * len(input_shape)
    shape[channel_axis] = input_shape[channel_axis]
    return tuple(shape)
