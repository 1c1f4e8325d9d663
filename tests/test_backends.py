"""The model half under JAX: same numbers as under TensorFlow.

Every registered model (tiny, ``tests/models/zoo_cases.py``) and every
custom layer is built here under TensorFlow; a subprocess
(``tests/backend_worker.py``, ``KERAS_BACKEND=jax``, TensorFlow blocked)
builds the same models by name and loads the same ``.weights.h5`` (the
layers from ``.keras`` files), and its outputs and gradients of a fixed
random projection of the outputs must match TensorFlow's to 1e-5 relative
for layers and 1e-4 for whole models (to the largest magnitude of each
output, and of all of a model's gradients). The augmentation layers must
give TensorFlow's outputs at inference and valid crops, flips and colour
shifts in training. One subprocess runs every case.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcnn.models
from tests.models import zoo_cases
from tfcnn import augment
from tfcnn import layers
from tfcnn.models.applications import APPLICATIONS

ROOT = Path(__file__).resolve().parents[1]
RTOL = 1e-5
# A 50-layer backbone sums its float32 convolutions in a different order
# on each backend (oneDNN, XLA): 6e-5 apart in FCN-8s/ResNet-50 scores.
MODEL_RTOL = 1e-4
# tfcnn's own networks; keras.applications' are Keras' to keep on every
# backend (tests/models/test_applications.py tests them under TensorFlow).
MODELS = [name for name in tfcnn.models.list_models()
          if name not in APPLICATIONS]


def _layer_cases():
    """name -> (inputs, layer applied to keras.Input tensors)."""
    rng = np.random.default_rng(0)

    def normal(*shape):
        return rng.standard_normal(shape).astype("float32")

    def single(layer, *shape):
        return [normal(*shape)], lambda xs: layer(xs[0])

    ten_crop = layers.TenCropViews(5)
    pool = keras.layers.GlobalAveragePooling2D()
    return {
        "lrn": single(layers.LocalResponseNormalization(), 2, 5, 5, 8),
        "lrn_wide": single(layers.LocalResponseNormalization(
            size=3, alpha=1e-2), 1, 3, 3, 200),
        "lrn_intra": single(layers.LocalResponseNormalization(
            size=3, alpha=0.1, mode="intra_channel"), 2, 5, 5, 4),
        "lrn_channels_first": single(layers.LocalResponseNormalization(
            alpha=0.1, data_format="channels_first"), 2, 8, 4, 4),
        "group_norm": single(layers.GroupNormalization(
            groups=2, gamma_initializer="random_normal",
            beta_initializer="random_normal"), 2, 4, 5, 8),
        "group_norm_channels_first": single(layers.GroupNormalization(
            groups=4, data_format="channels_first"), 2, 8, 3, 3),
        "dilated_conv": single(layers.DilatedConv2D(4, 3, dilation_rate=2),
                               2, 9, 9, 3),
        "transposed_conv": single(layers.TransposedConv2D(
            4, 4, strides=2, kernel_initializer="bilinear"), 2, 5, 5, 3),
        "pad_to_multiple": single(layers.PadToMultiple(8), 2, 5, 7, 3),
        "zero_pad_shortcut": single(layers.ZeroPadShortcut(8, strides=2),
                                    2, 4, 4, 4),
        "crop_like": ([normal(2, 9, 8, 3), normal(2, 6, 5, 1)],
                      lambda xs: layers.CropLike()(xs)),
        "resize_like": ([normal(2, 3, 3, 4), normal(2, 7, 6, 1)],
                        lambda xs: layers.ResizeLike()(xs)),
        "resize_like_nearest": (
            [normal(2, 3, 3, 4), normal(2, 7, 6, 1)],
            lambda xs: layers.ResizeLike("nearest")(xs)),
        "ten_crop_views": (
            [normal(2, 9, 9, 3)],
            lambda xs: layers.AverageViews()(pool(ten_crop(xs[0])))),
    }


def _augment_cases():
    """name -> (uint8 images, layer, training)."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 9, 9, 3)).astype("uint8")
    mean = rng.uniform(0, 255, (9, 9, 3)).astype("float32")
    return {
        "crop": (images, augment.RandomOrCentreCrop(5, seed=1), False),
        "crop_train": (images, augment.RandomOrCentreCrop(5, seed=1), True),
        "flip": (images, augment.RandomHorizontalFlip(seed=2), False),
        "flip_train": (images, augment.RandomHorizontalFlip(
            rate=0.5, seed=2), True),
        "lighting": (images, augment.PCALighting(seed=3), False),
        "lighting_train": (images, augment.PCALighting(stddev=0.5, seed=3),
                           True),
        "mean_image": (images, augment.MeanSubtraction(mean=mean), False),
        "mean_channel": (images, augment.MeanSubtraction(mode="channel"),
                         False),
        "mean_caffe": (images, augment.MeanSubtraction(mode="caffe"),
                       False),
        "scale_crop_flip": (images, augment.RandomScaleCropFlip(
            5, seed=4), False),
        "scale_crop_flip_train": (images, augment.RandomScaleCropFlip(
            5, scale_range=(1.0, 1.0), interpolation="nearest", seed=4),
            True),
    }


def _tf_gradients(model, xs, rs, training):
    tensors = [tf.constant(x) for x in xs]
    floats = [t for t in tensors if t.dtype.is_floating]
    with tf.GradientTape() as tape:
        tape.watch(floats)
        outputs = model(tensors if len(tensors) > 1 else tensors[0],
                        training=training)
        loss = tf.add_n([tf.reduce_sum(out * r) for out, r
                         in zip(keras.tree.flatten(outputs), rs)])
    sources = model.trainable_variables + floats
    grads = tape.gradient(loss, sources)
    # None: no path from the source (a reference input read for its shape
    # only); IndexedSlices: an embedding's rows.
    return [np.zeros(source.shape, "float32") if g is None
            else np.asarray(tf.convert_to_tensor(g))
            for g, source in zip(grads, sources)]


def _close(actual, expected, what, scale=None, rtol=RTOL):
    expected = np.asarray(expected, "float64")
    if scale is None:
        scale = float(np.abs(expected).max(initial=0.0))
    scale = max(scale, 1e-30)
    np.testing.assert_allclose(np.asarray(actual, "float64"), expected,
                               rtol=rtol, atol=rtol * scale, err_msg=what)


def write_cases(folder):
    """Writes every case under TF; returns TF's outputs and the inputs."""
    cases, arrays, expected = [], {}, {}
    rng = np.random.default_rng(2)

    def record(name, model, xs, training, gradients):
        for i, x in enumerate(xs):
            arrays[f"{name}/x{i}"] = x
        outputs = [np.asarray(o) for o in keras.tree.flatten(
            model(xs if len(xs) > 1 else xs[0], training=training))]
        expected[name] = {"outputs": outputs}
        if gradients:
            rs = [rng.standard_normal(o.shape).astype("float32")
                  for o in outputs]
            for i, r in enumerate(rs):
                arrays[f"{name}/r{i}"] = r
            expected[name]["grads"] = _tf_gradients(model, xs, rs, training)
        cases.append({"name": name, "num_inputs": len(xs),
                      "num_outputs": len(outputs),
                      "training": training, "gradients": gradients})

    for name in MODELS:
        model = tfcnn.models.build(name, **zoo_cases.tiny_options(name))
        model.save_weights(folder / f"{name}.weights.h5")
        x, _ = zoo_cases.tiny_batch(name, batch_size=2)
        record(name, model, [x], False, name in zoo_cases.TRAINED)
        cases[-1]["kind"] = "model"
    for name, (xs, apply) in _layer_cases().items():
        inputs = [keras.Input(x.shape[1:]) for x in xs]
        model = keras.Model(inputs, apply(inputs))
        model.save(folder / f"{name}.keras")
        record(name, model, xs, False, True)
        cases[-1]["kind"] = "file"
    for name, (images, layer, training) in _augment_cases().items():
        inputs = keras.Input(images.shape[1:], dtype="uint8")
        model = keras.Model(inputs, layer(inputs))
        model.save(folder / f"{name}.keras")
        record(name, model, [images], training, False)
        cases[-1]["kind"] = "file"
    (folder / "cases.json").write_text(json.dumps(cases))
    np.savez(folder / "inputs.npz", **arrays)
    return expected, arrays


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    """Writes every case under TF, runs the JAX worker once."""
    folder = tmp_path_factory.mktemp("backends")
    expected, arrays = write_cases(folder)
    # XLA's cheapest CPU compilation: each case compiles once and runs
    # once, so compiling dominates.
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT),
               XLA_FLAGS="--xla_backend_optimization_level=0 "
                         "--xla_llvm_disable_expensive_passes=true")
    done = subprocess.run(
        [sys.executable, "-m", "tests.backend_worker", str(folder)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = dict(np.load(folder / "results.npz"))
    return expected, results, arrays


def _outputs(results, name):
    count = sum(key.startswith(f"{name}/out") for key in results)
    return [results[f"{name}/out{i}"] for i in range(count)]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS + list(_layer_cases()))
def test_outputs_and_gradients_match_tensorflow(jax_run, name):
    """Every model's outputs; gradients of every layer, and of every model
    whose code paths no sibling already covers (``zoo_cases.TRAINED``)."""
    expected, results, _ = jax_run
    rtol = MODEL_RTOL if name in MODELS else RTOL
    outputs = _outputs(results, name)
    assert len(outputs) == len(expected[name]["outputs"])
    for i, (got, want) in enumerate(zip(outputs, expected[name]["outputs"])):
        assert np.isfinite(got).all()
        _close(got, want, f"{name} output {i}", rtol=rtol)
    grads = expected[name].get("grads", [])
    assert len(grads) > 0 or name not in zoo_cases.TRAINED + tuple(
        _layer_cases())
    # Relative to the largest gradient of the model: a small array (the
    # few betas of a deep network's first group norm) carries float32
    # rounding from everything above it.
    scale = max((float(np.abs(g).max(initial=0.0)) for g in grads),
                default=0.0)
    for i, want in enumerate(grads):
        _close(results[f"{name}/grad{i}"], want, f"{name} gradient {i}",
               scale, rtol)


INFERENCE = [name for name, case in _augment_cases().items() if not case[2]]


@pytest.mark.slow
@pytest.mark.parametrize("name", INFERENCE)
def test_augmentation_inference_matches_tensorflow(jax_run, name):
    expected, results, _ = jax_run
    got, = _outputs(results, name)
    want, = expected[name]["outputs"]
    assert got.dtype == want.dtype
    _close(got, want, name)


def _window_offsets(image, crop):
    """Every (top, left) where ``crop`` is a window of ``image``."""
    size = crop.shape[0]
    return [(t, s) for t in range(image.shape[0] - size + 1)
            for s in range(image.shape[1] - size + 1)
            if np.array_equal(image[t:t + size, s:s + size], crop)]


def _training_crops(jax_run, name):
    """The case's uint8 input images and JAX's 5x5 uint8 training crops."""
    _, results, arrays = jax_run
    crops, = _outputs(results, name)
    assert crops.shape == (4, 5, 5, 3) and crops.dtype == np.uint8
    return arrays[f"{name}/x0"], crops


@pytest.mark.slow
def test_random_crops_are_windows_of_their_image(jax_run):
    images, crops = _training_crops(jax_run, "crop_train")
    offsets = set()
    for image, crop in zip(images, crops):
        found = _window_offsets(image, crop)
        assert found, "a crop that is no window of its image"
        offsets.add(found[0])
    assert len(offsets) > 1, "every image got the same window"


@pytest.mark.slow
def test_flips_mirror_some_images_only(jax_run):
    _, results, arrays = jax_run
    images = arrays["flip_train/x0"]
    flipped, = _outputs(results, "flip_train")
    mirrored = [np.array_equal(out, image[:, ::-1])
                for image, out in zip(images, flipped)]
    kept = [np.array_equal(out, image) for image, out in zip(images, flipped)]
    assert all(m or k for m, k in zip(mirrored, kept))
    assert any(mirrored) and any(kept)


@pytest.mark.slow
def test_lighting_shifts_each_image_by_one_colour(jax_run):
    _, results, arrays = jax_run
    images = arrays["lighting_train/x0"].astype("float32")
    shifted, = _outputs(results, "lighting_train")
    shift = shifted - images
    np.testing.assert_allclose(shift, np.broadcast_to(
        shift[:, :1, :1, :], shift.shape), atol=1e-3)
    assert np.abs(shift).max() > 0.1
    assert len({tuple(np.round(s[0, 0], 3)) for s in shift}) == 4


@pytest.mark.slow
def test_scale_crop_flip_cuts_windows_at_scale_one(jax_run):
    images, crops = _training_crops(jax_run, "scale_crop_flip_train")
    for image, crop in zip(images, crops):
        assert (_window_offsets(image, crop)
                or _window_offsets(image[:, ::-1], crop))
