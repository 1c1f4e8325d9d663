"""Tests of tfcnn.train.backend: train.backend and KERAS_BACKEND, and the
fit loop under JAX on two host CPU devices (in a subprocess: Keras picks
its backend once per process)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.train.conftest import assert_same_steps
from tests.train.conftest import subprocess_env
from tests.train.conftest import tiny_recipe
from tfcnn import cli
from tfcnn import recipe as recipe_lib
from tfcnn.errors import RecipeError
from tfcnn.train import backend


def test_select_sets_keras_backend_from_the_recipe(tmp_path):
    script = ("import os, sys; from tfcnn import recipe; "
              "from tfcnn.train import backend; "
              "backend.select(recipe.load_recipe(sys.argv[1])); "
              "assert 'keras' not in sys.modules; "
              "import keras; print(os.environ['KERAS_BACKEND'], "
              "keras.backend.backend())")
    path = tmp_path / "recipe.toml"
    path.write_text(recipe_lib.dump_toml(tiny_recipe(tmp_path,
                                                     backend="jax")))
    env = subprocess_env()
    env.pop("KERAS_BACKEND", None)
    result = subprocess.run([sys.executable, "-c", script, str(path)],
                            env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["jax", "jax"]
    # Where Keras already runs the recipe's backend, nothing changes.
    environ = {}
    backend.select(tiny_recipe(tmp_path), environ)
    assert environ == {}


def test_select_refuses_a_keras_backend_of_another_name(tmp_path):
    recipe = tiny_recipe(tmp_path, backend="jax")
    with pytest.raises(RecipeError) as error:
        backend.select(recipe, {"KERAS_BACKEND": "tensorflow"})
    assert str(error.value) == (
        "the environment's KERAS_BACKEND=tensorflow and the recipe's "
        "train.backend = \"jax\" disagree; unset KERAS_BACKEND or set "
        "--set train.backend=tensorflow. Received: "
        "KERAS_BACKEND='tensorflow'")


def test_select_refuses_a_backend_keras_did_not_load(tmp_path):
    # This process imported Keras on TensorFlow; it cannot switch.
    with pytest.raises(RecipeError, match="already imported with the "
                                          "tensorflow backend"):
        backend.select(tiny_recipe(tmp_path, backend="jax"), {})
    with pytest.raises(RecipeError, match="Keras runs on tensorflow"):
        backend.check_active(tiny_recipe(tmp_path, backend="jax"))


def test_multi_worker_and_frozen_layers_are_tensorflows_alone(tmp_path):
    recipe = tiny_recipe(tmp_path, backend="jax", strategy="multi_worker")
    with pytest.raises(RecipeError, match="multi_worker.* is TensorFlow's"):
        backend.select(recipe, {})
    for frozen in ({"trainable": "head"}, {"head_epochs": 1}):
        with pytest.raises(RecipeError, match="freeze layers, which "
                                              "train.backend = \"jax\""):
            backend.select(tiny_recipe(tmp_path, backend="jax", **frozen),
                           {})
        backend.check_supported(tiny_recipe(tmp_path, **frozen).train)


def test_cli_conflict_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    path = tmp_path / "recipe.toml"
    path.write_text(recipe_lib.dump_toml(tiny_recipe(tmp_path / "run")))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    for command in ("train", "run"):
        assert cli.main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [
            f"tfcnn {command}: error: the environment's KERAS_BACKEND=jax "
            "and the recipe's train.backend = \"tensorflow\" disagree; "
            "unset KERAS_BACKEND or set --set train.backend=jax. "
            "Received: KERAS_BACKEND='jax'"]
    assert not (tmp_path / "run").exists()


# Runs under KERAS_BACKEND=jax with two host CPU devices: the first two
# steps of one device and of DataParallel over both, then fit.train over
# both devices in mixed float16 (Keras' loss scaling).
TWO_DEVICES = '''\
import json
import sys

import keras
import numpy as np
import tensorflow as tf

from tests.train.conftest import tiny_recipe
from tests.train.conftest import two_step_setup
from tfcnn.train import fit
from tfcnn.train import strategy as strategy_lib

out = sys.argv[1]
assert keras.backend.backend() == "jax"
assert len(keras.distribution.list_devices()) == 2
recipe, initial, batch = two_step_setup(out + "/run", backend="jax")


def two_steps(distribution):
    keras.distribution.set_distribution(distribution)
    try:
        model = fit.build_training_model(recipe, 4)
        fit.compile_model(model, recipe, steps_per_epoch=2)
        model.set_weights(initial)
        dataset = tf.data.Dataset.from_tensors(batch).repeat()
        model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0,
                  shuffle=False)
        return model.get_weights()
    finally:
        keras.distribution.set_distribution(None)


one = two_steps(None)
placement = strategy_lib.make_strategy(
    recipe.replace(train={"strategy": "mirrored"}).train)
two = two_steps(placement.strategy.distribution)
np.savez(out + "/steps.npz", *initial, *one, *two)

run = tiny_recipe(out + "/run", strategy="auto", backend="jax", epochs=2,
                  histogram_freq=1, precision="mixed_float16")
summary = fit.train(run, verbose=0)
json.dump({"num_replicas": placement.num_replicas,
           "summary": summary}, open(out + "/result.json", "w"),
          default=str)
'''


@pytest.mark.slow
def test_jax_two_devices_match_one_and_train_the_run(tmp_path):
    # Mirrors tests/train/test_fit.py's MirroredStrategy equivalence:
    # DataParallel over two host devices takes the steps one device takes.
    script = tmp_path / "two_devices.py"
    script.write_text(TWO_DEVICES)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], timeout=300,
        capture_output=True, text=True, env=subprocess_env(
            KERAS_BACKEND="jax",
            XLA_FLAGS="--xla_force_host_platform_device_count=2"))
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "steps.npz") as npz:
        arrays = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    count = len(arrays) // 3
    assert_same_steps(arrays[:count], arrays[count:2 * count],
                      arrays[2 * count:])

    result = json.loads((tmp_path / "result.json").read_text())
    assert result["num_replicas"] == 2
    summary = result["summary"]
    assert summary["num_replicas"] == 2 and summary["epochs_run"] == 2
    run = tmp_path / "run"
    for name in ("model.keras", "classes.json", "recipe.toml",
                 "fingerprint.json", "training.json",
                 "checkpoints/best.keras"):
        assert (run / name).is_file(), name
    assert not (run / "backup").exists()
    assert 'backend = "jax"' in (run / "recipe.toml").read_text()
    # TensorBoard: Keras' epoch scalars and histograms, tfcnn's step
    # scalars, inputs, filters and confusion matrix, all under JAX.
    tags = _event_tags(run / "logs")
    for tag in ("epoch_loss", "training/images_per_second",
                "training/input_wait_fraction",
                "inputs/augmented", "filters/first_layer",
                "evaluation/confusion_matrix"):
        assert tag in tags, sorted(tags)
    assert any(tag.endswith("histogram") for tag in tags), sorted(tags)

    # The .keras file is the backend's own no more: TensorFlow loads it.
    import keras

    model = keras.saving.load_model(run / "model.keras")
    images = np.zeros((2, 20, 20, 3), np.uint8)
    probabilities = keras.ops.convert_to_numpy(model(images))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def _event_tags(log_dir):
    from tensorboard.backend.event_processing import event_accumulator

    tags = set()
    for run in ("train", "validation"):
        events = event_accumulator.EventAccumulator(
            str(log_dir / run), size_guidance={"tensors": 0})
        events.Reload()
        tags.update(events.Tags()["tensors"])
    return tags


def test_validation_batches_split_evenly_over_data_parallel():
    # 37 validation images in batches of 8 over 3 devices: each batch
    # keeps its largest multiple of 3 (6, 6, 6, 6, 3); tf.distribute's
    # and one device's batches stay whole.
    import dataclasses

    import tensorflow as tf

    from tfcnn.train import fit
    from tfcnn.train import inputs
    from tfcnn.train import strategy as strategy_lib

    images = np.arange(37 * 2, dtype=np.uint8).reshape(37, 1, 1, 2)
    labels = np.arange(37, dtype=np.int32)
    validation = tf.data.Dataset.from_tensor_slices(
        (images, labels)).batch(8)
    fields = {field.name: None for field in dataclasses.fields(
        inputs.Inputs)}
    data = inputs.Inputs(**{**fields, "validation": validation,
                            "local_validation": validation,
                            "validation_steps": 5,
                            "num_validation_examples": 37})

    class ThreeDevices:
        distribution = object()

    def placement(strategy, replicas):
        return strategy_lib.Placement(strategy, replicas, 1, True, "chief")

    trimmed = fit._whole_replica_batches(
        data, placement(ThreeDevices(), 3), 8)
    sizes = [len(y) for _, y in trimmed.validation]
    assert sizes == [6, 6, 6, 6, 3] and trimmed.validation_steps == 5
    kept = np.concatenate([y for _, y in trimmed.local_validation])
    np.testing.assert_array_equal(kept[:6], labels[:6])
    # 33 images: the last batch of 1 holds no whole share of 3 devices.
    fewer = dataclasses.replace(data, num_validation_examples=33,
                                local_validation=validation.take(5))
    assert fit._whole_replica_batches(
        fewer, placement(ThreeDevices(), 3), 8).validation_steps == 4
    single = strategy_lib.KerasDistribution(None)
    assert fit._whole_replica_batches(data, placement(single, 1), 8) is data
