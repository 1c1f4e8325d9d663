"""Tests of tfcnn.train.freeze: frozen layers, the two-stage schedule."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcnn import recipe as recipe_lib
from tfcnn.errors import RecipeError
from tfcnn.train import fit
from tfcnn.train import freeze
from tfcnn.train import optimizers

HEAD = "logits"


def bn_recipe(model_dir, **train):
    """A tiny ResNet-18 (batch norm) on 32x32 synthetic images: 4 steps of
    16 images per epoch, backups every 2 steps."""
    return recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic", "crop_size": 32, "resize_size": 32,
                 "synthetic_classes": 4, "synthetic_images": 64},
        "augment": {"flip": False, "crop": "none", "pca_lighting": 0.0,
                    "mean": "none"},
        "model": {"name": "resnet18",
                  "options": {"width_multiplier": 0.0625}},
        "train": {"epochs": 2, "batch_size": 16, "learning_rate": 0.05,
                  "model_dir": str(model_dir), "backup_steps": 2,
                  "histogram_freq": 0, **train},
    })


class _Snapshots(keras.callbacks.Callback):
    """The network's weights by path before training and after each epoch;
    optionally a crash after a given global step."""

    def __init__(self, crash_at=None):
        super().__init__()
        self.before = None
        self.epochs = {}
        self.crash_at = crash_at

    def _weights(self):
        network = freeze.network_of(self.model)
        return {v.path: np.array(v.numpy()) for v in network.weights}

    def on_train_begin(self, logs=None):
        if self.before is None:
            self.before = self._weights()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[epoch] = self._weights()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step == self.crash_at:
            raise KeyboardInterrupt("simulated crash")


def _split(before, after, head=HEAD):
    """(frozen weights bitwise unchanged?, head weights all changed?)."""
    body_same = all(np.array_equal(before[k], after[k])
                    for k in before if not k.startswith(head + "/"))
    head_moved = all(not np.array_equal(before[k], after[k])
                     for k in before if k.startswith(head + "/"))
    return body_same, head_moved


def test_head_only_leaves_the_body_and_its_batch_norm_bitwise(tmp_path,
                                                               capsys):
    snapshots = _Snapshots()
    summary = fit.train(bn_recipe(tmp_path / "run", trainable="head"),
                        verbose=0, callbacks=[snapshots])
    after = snapshots.epochs[1]
    assert any("moving_mean" in k for k in after)  # BN stats compared too
    assert _split(snapshots.before, after) == (True, True)
    captured = capsys.readouterr()
    counts = summary["parameters"]
    assert counts["trainable"] == 32 * 4 + 4  # the classifier of 32 features
    assert "train all" not in captured.err
    assert "epochs 1-2 train head: 132 trainable" in captured.err
    # The summary line (which `tfcnn train` prints on stdout).
    assert captured.out == ""
    assert (f"132 trainable, {counts['frozen']:,} frozen, "
            f"{counts['non_trainable']:,} non-trainable parameters"
            in summary.line)


def test_from_layer_trains_that_layer_and_the_ones_after(tmp_path):
    snapshots = _Snapshots()
    fit.train(bn_recipe(tmp_path / "run", epochs=1,
                        trainable="from:conv5_block2_1_conv"),
              verbose=0, callbacks=[snapshots])
    before, after = snapshots.before, snapshots.epochs[0]
    network = fit.build_training_model(bn_recipe(tmp_path), 4)
    names = [layer.name for layer in freeze.network_of(network).layers]
    first = names.index("conv5_block2_1_conv")
    for path in before:
        layer = path.split("/")[0]
        changed = not np.array_equal(before[path], after[path])
        assert changed == (names.index(layer) >= first), path


def test_two_stages_freeze_then_unfreeze_at_a_divided_rate(tmp_path,
                                                           capsys):
    snapshots = _Snapshots()
    recipe = bn_recipe(tmp_path / "run", epochs=3, head_epochs=1,
                       unfreeze_lr_divisor=4.0)
    fit.train(recipe, verbose=0, callbacks=[snapshots])
    assert _split(snapshots.before, snapshots.epochs[0]) == (True, True)
    body_same, _ = _split(snapshots.epochs[0], snapshots.epochs[2])
    assert not body_same
    err = capsys.readouterr().err
    assert "train: epoch 1 trains head:" in err
    assert "train: epochs 2-3 train all:" in err
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(tmp_path / "run/logs/train"),
        size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    counts = {tag: {e.step: float(tf.make_ndarray(e.tensor_proto))
                    for e in accumulator.Tensors(f"parameters/{tag}")}
              for tag in ("trainable", "frozen", "non_trainable")}
    assert counts["trainable"][0] == 132 and counts["frozen"][1] == 0
    statistics = sum(v.size for k, v in snapshots.before.items()
                     if "moving" in k)  # never trainable, in either stage
    assert counts["non_trainable"][0] == counts["non_trainable"][1] \
        == statistics
    assert counts["trainable"][1] == (counts["trainable"][0]
                                      + counts["frozen"][0])
    schedule = optimizers.build_learning_rate(recipe.train, 4)
    rates = [float(schedule(step)) for step in (0, 3, 4, 11)]
    np.testing.assert_allclose(rates, [0.05, 0.05, 0.0125, 0.0125],
                               rtol=1e-6)


@pytest.mark.slow
def test_killed_in_either_stage_resumes_in_that_stage(tmp_path):
    # 4 steps per epoch, backups every 2: a crash after step 3 resumes at
    # step 2 (the head stage), one after step 7 at step 6 (the second).
    recipe = bn_recipe(tmp_path / "run", epochs=3, head_epochs=1)
    first = _Snapshots(crash_at=3)
    with pytest.raises(KeyboardInterrupt):
        fit.train(recipe, verbose=0, callbacks=[first])
    keras.backend.clear_session()
    second = _Snapshots(crash_at=7)
    with pytest.raises(KeyboardInterrupt):
        fit.train(recipe, verbose=0, callbacks=[second])
    # The head stage ended, after the resume, with the body as initialized.
    assert _split(first.before, second.epochs[0]) == (True, True)
    keras.backend.clear_session()
    third = _Snapshots()
    summary = fit.train(recipe, verbose=0, callbacks=[third])
    assert summary["resumed_from"] == {"epoch": 1, "step": 2}
    assert fit.is_complete(recipe)
    assert not _split(first.before, third.epochs[2])[0]


def test_bad_trainable_values_name_the_key(tmp_path):
    with pytest.raises(RecipeError, match="train.trainable must be"):
        bn_recipe(tmp_path, trainable="body")
    with pytest.raises(RecipeError, match="head_epochs must be in"):
        bn_recipe(tmp_path, head_epochs=2)
    with pytest.raises(RecipeError, match="has no layer 'conv9'"):
        fit.train(bn_recipe(tmp_path / "run", trainable="from:conv9"),
                  verbose=0)
    with pytest.raises(RecipeError, match="head_epochs must be 0 with"):
        fit.train(bn_recipe(tmp_path / "run2", schedule="plateau",
                            head_epochs=1), verbose=0)


def test_all_restores_what_the_builder_froze():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="fixed", trainable=False)(inputs)
    x = keras.layers.Dense(3, name="middle")(x)
    x = keras.layers.Dense(2, name="logits")(x)
    network = keras.Model(inputs, x)
    freezer = freeze.Freezer(network)

    def flags():
        return [layer.trainable for layer in network.layers[1:]]

    assert freezer.apply("head") is True
    assert flags() == [False, False, True]
    # The builder's fixed layer never trains: not frozen by choice.
    assert freezer.counts() == freeze.ParameterCounts(
        trainable=3 * 2 + 2, frozen=3 * 3 + 3, non_trainable=4 * 3 + 3)
    assert freezer.apply("all") is True
    assert flags() == [False, True, True]
    assert freezer.apply("from:fixed") is False  # the builder's choice holds
    with pytest.raises(RecipeError, match="no layer 'nowhere'"):
        freezer.apply("from:nowhere")


def test_head_after_weights_until_is_every_later_layer():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="backbone")(inputs)
    x = keras.layers.Dense(3, name="hidden")(x)
    x = keras.layers.Dense(2, name="logits")(x)
    network = keras.Model(inputs, x)
    freezer = freeze.Freezer(network, head_after="backbone")
    assert freezer.apply("head") is True
    assert [layer.trainable for layer in network.layers[1:]] == [
        False, True, True]
    assert freezer.counts() == freeze.ParameterCounts(
        3 * 3 + 3 + 3 * 2 + 2, 4 * 3 + 3, 0)
    with pytest.raises(RecipeError, match="weights_until: .* no layer "
                                          "'nowhere'"):
        freeze.Freezer(network, head_after="nowhere").apply("head")


def test_head_stage_trains_every_layer_after_weights_until(tmp_path, capsys):
    fit.train(bn_recipe(tmp_path / "source", epochs=1), verbose=0)
    until = "conv5_block2_1_conv"
    recipe = bn_recipe(tmp_path / "run", epochs=2, head_epochs=1)
    recipe = recipe.replace(model={"weights": str(tmp_path / "source"),
                                   "weights_until": until})
    snapshots = _Snapshots()
    fit.train(recipe, verbose=0, callbacks=[snapshots])
    err = capsys.readouterr().err
    assert "new: conv5_block2_1_bn/gamma" in err
    names = [layer.name for layer in freeze.network_of(
        fit.build_training_model(recipe, 4)).layers]
    before, after = snapshots.before, snapshots.epochs[0]
    for path in before:
        layer = path.split("/")[0]
        changed = not np.array_equal(before[path], after[path])
        assert changed == (names.index(layer) > names.index(until)), path


def test_segmentation_freezes_the_network_inside_its_wrappers():
    # JointAugmentationModel -> inference model (mean, pad, crop, softmax)
    # -> the network: "head" is the network's classifier, not the wrapper.
    from tfcnn import tasks

    recipe = recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic", "crop_size": 32, "resize_size": 32},
        "augment": {"mean": "imagenet", "flip": False, "pca_lighting": 0.0},
        "model": {"name": "fcn8s_small"}})
    model = tasks.get_task("segmentation").build_training_model(recipe, 3)
    network = freeze.network_of(model)
    assert "mean_subtraction" not in [layer.name for layer in network.layers]
    freezer = freeze.Freezer(network)
    assert freezer.apply("head") is True
    # The score layer trains; the fixed bilinear upsampling after it
    # (built frozen) stays frozen.
    trained = [layer.name for layer in network.layers
               if layer.weights and layer.trainable]
    assert len(trained) == 1 and trained[0].startswith("score"), trained


TINY_VGG = ("model.options={width_multiplier = 0.0625, fc_units = 16, "
            "dropout = 0.0}")


@pytest.fixture(scope="module")
def vgg_run(tmp_path_factory):
    """A tiny VGG-11 trained one epoch on ingested 32 px class folders:
    ``(recipe file, run folder)``."""
    from tests.train.conftest import ingested_recipe
    from tfcnn import cli

    root = tmp_path_factory.mktemp("vgg_run")
    recipe = ingested_recipe(
        root, data={"resize_size": 32, "crop_size": 32},
        model={"name": "vgg11", "options": {
            "width_multiplier": 0.0625, "fc_units": 16, "dropout": 0.0}})
    assert cli.main(["train", str(recipe)]) == 0
    return recipe, root / "run"


def test_weights_of_another_architecture_are_refused(vgg_run, tmp_path,
                                                     capsys):
    from tfcnn import cli

    recipe, run = vgg_run
    into_lenet = ["train", str(recipe), "--set", "model.name=lenet5",
                  "--set", "model.options={}", "--set",
                  f"model.weights={str(run)!r}", "--set",
                  f"train.model_dir={str(tmp_path / 'lenet')!r}"]
    capsys.readouterr()
    assert cli.main(into_lenet) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "fills 0 of the 8 weight tensors of lenet5" in err[0], err
    assert "for conv1, conv2, fc1" in err[0], err
    assert "model.weights_partial = true" in err[0], err

    assert cli.main([*into_lenet, "--set", "model.weights_partial=true"]) \
        == 0


def test_head_stage_trains_every_layer_that_got_no_weights(vgg_run,
                                                           tmp_path, capsys):
    from tfcnn import cli
    from tfcnn.models import saving

    recipe, run = vgg_run
    capsys.readouterr()
    # Other fully connected sizes: fc1, fc2 and the classifier start
    # fresh, the convolutions start from the run.
    assert cli.main([
        "train", str(recipe), "--set", TINY_VGG.replace("16", "8"),
        "--set", f"model.weights={str(run)!r}",
        "--set", "train.head_epochs=1", "--set", "train.epochs=2",
        "--set", f"train.model_dir={str(tmp_path / 'tuned')!r}"]) == 0
    err = capsys.readouterr().err
    assert "new: fc1/kernel, fc1/bias, fc2/kernel, fc2/bias, " \
           "logits/kernel" in err, err
    network = freeze.network_of(saving.load_model(tmp_path / "tuned" /
                                                  "model.keras"))
    fresh = sum(int(np.prod(w.shape)) for name in ("fc1", "fc2", "logits")
                for w in network.get_layer(name).weights)
    assert f"epoch 1 trains head: {fresh:,} trainable," in err, err


def test_batch_norm_statistics_are_not_counted_as_frozen(vgg_run, tmp_path,
                                                         capsys):
    from tfcnn import cli
    from tfcnn.models import saving

    recipe, _ = vgg_run
    capsys.readouterr()
    assert cli.main([
        "train", str(recipe), "--set", "model.name=resnet18", "--set",
        "model.options={width_multiplier = 0.0625}", "--set",
        f"train.model_dir={str(tmp_path / 'resnet')!r}", "--json"]) == 0
    parameters = json.loads(capsys.readouterr().out)["parameters"]
    network = freeze.network_of(saving.load_model(tmp_path / "resnet" /
                                                  "model.keras"))
    statistics = sum(int(np.prod(v.shape)) for v in network.weights
                     if "moving" in v.path)
    assert parameters == {
        "trainable": sum(int(np.prod(v.shape))
                         for v in network.trainable_weights),
        "frozen": 0, "non_trainable": statistics}
