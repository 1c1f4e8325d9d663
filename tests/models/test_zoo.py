"""The contract every registered model keeps, checked on tiny versions.

For every name in ``tfcnn.models.list_models()``: output shape at several
batch sizes, finite probabilities, readable and deterministic layer names,
mixed precision with a float32 output and a ``.keras`` round trip (the two
deepest ResNets symbolically only, see ``zoo_cases.DEEP``); for every model
but the deeper VGG/ResNet variants (``zoo_cases.TRAINED``), a gradient for
every trainable weight and a few training steps that lower the loss. One
case per custom layer (``zoo_cases.PORTABLE``) is exported as a SavedModel
and built under a MirroredStrategy over the two logical CPUs of
``tests/conftest.py``; AlexNet also trains under it.
"""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcnn.models
from tests.models import zoo_cases
from tfcnn.models.applications import APPLICATIONS
from tfcnn.train.strategy import mirrored

# keras.applications' networks keep Keras' layer names and have their own
# tests (tests/models/test_applications.py).
MODELS = [name for name in tfcnn.models.list_models()
          if name not in APPLICATIONS]


def _build(name, **extra):
    return tfcnn.models.build(name, **{**zoo_cases.tiny_options(name),
                                       **extra})


def _snake_case(class_name):
    # Keras' own rule for default layer names (keras.src.utils.naming).
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _compile(model, learning_rate=1e-2):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", jit_compile=False)


def test_every_registered_model_has_a_tiny_case():
    assert set(MODELS) == set(zoo_cases.TINY)


@pytest.mark.parametrize("name", zoo_cases.DEEP)
def test_deep_variants_build_symbolically(name):
    model = zoo_cases.build_shapes_only(name, **zoo_cases.tiny_options(name))
    assert model.name == name
    assert model.output.dtype == "float32"
    assert model.output_shape == (None, zoo_cases.NUM_CLASSES)
    names = [layer.name for layer in model.layers]
    assert len(set(names)) == len(names)
    for layer in model.layers:
        default = _snake_case(type(layer).__name__)
        assert not re.fullmatch(f"{default}_[0-9]+", layer.name)


@pytest.mark.parametrize("name", sorted(set(MODELS) - set(zoo_cases.DEEP)))
def test_model_contract(name, tmp_path):
    """Shapes at any batch size, names, .keras round trip, mixed precision.

    One test per model, building it once, keeps the suite's run time down.
    """
    keras.utils.set_random_seed(0)
    model = _build(name)
    assert model.name == name
    assert model.output.dtype == "float32"

    # Any batch size; probabilities that sum to one.
    for batch_size in (1, 3):
        x, _ = zoo_cases.tiny_batch(name, batch_size)
        y = keras.ops.convert_to_numpy(model(x, training=False))
        assert y.shape == zoo_cases.output_shape(name, batch_size)
        assert np.all(np.isfinite(y))
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)

    # Named by hand, not by Keras' counters ("conv2d_3").
    for layer in model.layers:
        default = _snake_case(type(layer).__name__)
        assert not re.fullmatch(f"{default}_[0-9]+", layer.name), (
            f"{name}: layer {layer.name!r} has a generated name")

    # The model survives a .keras file (safe mode: no Lambda inside).
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [layer.name for layer in loaded.layers] == [
        layer.name for layer in model.layers]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(y), atol=1e-5)

    # Mixed precision: float16 compute, the final softmax in float32. Built
    # again in the same session, so a layer left to Keras' generated names
    # would now be renamed ("flatten" -> "flatten_1").
    keras.config.set_dtype_policy("mixed_float16")
    mixed = _build(name)
    assert [layer.name for layer in mixed.layers] == [
        layer.name for layer in model.layers]
    y = mixed(x, training=False)
    assert y.dtype == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))
    computed = {layer.compute_dtype for layer in mixed.layers
                if layer.weights and not isinstance(
                    layer, (keras.layers.BatchNormalization,
                            keras.layers.Embedding))}
    assert "float16" in computed


@pytest.mark.parametrize("name", zoo_cases.TRAINED)
def test_every_weight_learns_and_a_few_steps_lower_the_loss(name):
    keras.utils.set_random_seed(0)
    model = _build(name)
    x, y = zoo_cases.tiny_batch(name, 8)
    optimizer = keras.optimizers.Adam(3e-3)
    losses = []
    # Eager steps: for models this small, tracing a train function costs
    # more than the steps themselves.
    for step in range(5):
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(
                keras.losses.sparse_categorical_crossentropy(
                    y, model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        if step == 0:
            # Every trainable weight receives a nonzero, finite gradient.
            assert model.trainable_variables
            for variable, grad in zip(model.trainable_variables, grads):
                assert grad is not None, f"no gradient for {variable.path}"
                grad = keras.ops.convert_to_numpy(grad)
                assert np.all(np.isfinite(grad)), variable.path
                assert np.any(grad != 0), f"zero gradient: {variable.path}"
        optimizer.apply(grads, model.trainable_variables)
        losses.append(float(loss))
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.97 * losses[0], losses


@pytest.mark.parametrize("name, options", zoo_cases.PORTABLE)
def test_saved_model_export_serves_any_batch_size(name, options, tmp_path):
    keras.utils.set_random_seed(0)
    model = _build(name, **options)
    model.export(str(tmp_path / "export"), format="tf_saved_model",
                 verbose=False)
    served = tf.saved_model.load(str(tmp_path / "export"))
    for batch_size in (2, 3):
        x, _ = zoo_cases.tiny_batch(name, batch_size)
        np.testing.assert_allclose(
            served.serve(x).numpy(),
            keras.ops.convert_to_numpy(model(x, training=False)),
            atol=1e-5)


def _mirrored():
    return mirrored(["/cpu:0", "/cpu:1"])


@pytest.mark.parametrize("name, options", zoo_cases.PORTABLE)
def test_builds_inside_a_strategy_scope(name, options):
    with _mirrored().scope():
        model = _build(name, **options)
    assert model.trainable_variables
    assert all(isinstance(v.value, tf.distribute.DistributedValues)
               for v in model.variables)


def test_trains_under_mirrored_strategy():
    # One fit under two replicas: the batch of 4 is split 2 + 2 and the
    # gradients of LRN and the grouped convolutions are reduced.
    name = "alexnet"
    keras.utils.set_random_seed(0)
    with _mirrored().scope():
        model = _build(name)
        _compile(model)
    x, y = zoo_cases.tiny_batch(name, 4)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(x[:3], verbose=0).shape == (
        zoo_cases.output_shape(name, 3))
