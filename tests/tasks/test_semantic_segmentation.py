"""Semantic segmentation as a task: model, loss, metrics, a real run."""

import base64
import glob
import json

import keras
import numpy as np
import pytest
import requests
import tensorflow as tf
from PIL import Image

from tests.data.segmentation_files import make_pairs
from tfcnn import cli
from tfcnn import export
from tfcnn import recipe as recipe_lib
from tfcnn import tasks
from tfcnn.data import segmentation_pipeline
from tfcnn.errors import DataError
from tfcnn.serve import predict
from tfcnn.serve import server as server_lib
from tfcnn.tasks import semantic_segmentation
from tfcnn.train import evaluate
from tfcnn.train import fit

TASK = tasks.get_task("segmentation")


def _recipe(tmp_path, shards="", **train):
    return recipe_lib.recipe_from_dict({
        "data": {"source": "tfrecord", "shards": str(shards),
                 "crop_size": 32, "resize_size": 32},
        "augment": {"pca_lighting": 0.0, "mean": "channel"},
        "model": {"name": "fcn8s_small",
                  "options": {"widths": [8, 8, 16, 16, 16]}},
        "train": {"epochs": 3, "batch_size": 8, "optimizer": "adam",
                  "learning_rate": 0.01, "model_dir": str(tmp_path / "run"),
                  "histogram_freq": 0, **train},
    })


def test_tasks_are_found_by_the_manifest_name():
    assert tasks.get_task("classification").monitor == "accuracy"
    assert TASK.monitor == "mean_iou"
    with pytest.raises(Exception, match="unknown task 'detection'"):
        tasks.get_task("detection")


def test_training_model_scores_every_pixel_of_any_size(tmp_path):
    model = TASK.build_training_model(_recipe(tmp_path), 3).network
    assert model.input.dtype == "uint8"
    for height, width in ((32, 32), (37, 50), (20, 64)):
        images = np.zeros((2, height, width, 3), np.uint8)
        probabilities = keras.ops.convert_to_numpy(model(images))
        assert probabilities.shape == (2, height, width, 3)
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    # The padded border is cropped away: a pixel's scores do not depend
    # on how far the padding reaches (the image is its own top-left).
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, 40, 40, 3)).astype(np.uint8)
    inner = keras.ops.convert_to_numpy(model(image[:, :33, :33]))
    assert inner.shape == (1, 33, 33, 3)


def test_median_frequency_weights_come_from_pixel_counts(tmp_path):
    recipe = _recipe(tmp_path, class_weighting="median_frequency")
    loss = TASK.build_loss(recipe, ["a", "b", "c", "d"],
                           {"a": 600, "b": 300, "c": 100, "d": 0})
    # Frequencies 0.6, 0.3, 0.1; median 0.3; an absent class weighs 0.
    np.testing.assert_allclose(loss.class_weights, [0.5, 1.0, 3.0, 0.0])
    assert loss.ignore_class == 255
    assert TASK.build_loss(_recipe(tmp_path), ["a"], {}).class_weights is None
    with pytest.raises(Exception, match="pixel counts"):
        TASK.build_loss(recipe, ["a", "b"], {})


@pytest.mark.slow
def test_ingested_masks_train_with_overlays_and_per_class_iou(tmp_path):
    make_pairs(tmp_path / "src", 24, num_classes=3, split="train")
    make_pairs(tmp_path / "src", 8, num_classes=3, split="validation")
    assert cli.main(["ingest", str(tmp_path / "src"),
                     str(tmp_path / "shards")]) == 0
    # The pairs' flat colours leave channels without variance: ImageNet's
    # channel statistics instead of the data's.
    recipe = _recipe(tmp_path, tmp_path / "shards").replace(
        augment={"mean": "imagenet"})
    summary = fit.train(recipe, verbose=0)
    metrics = summary["metrics"]
    for key in ("loss", "mean_iou", "pixel_accuracy", "val_loss",
                "val_mean_iou", "val_pixel_accuracy"):
        assert np.isfinite(metrics[key]), key
    assert summary["best"]["monitor"] == "val_mean_iou"
    model = keras.saving.load_model(summary["paths"]["model"])
    assert model(np.zeros((1, 24, 40, 3), np.uint8)).shape == (1, 24, 40, 3)
    tags = set()
    for path in glob.glob(str(tmp_path / "run/logs/validation/*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert "segmentation_overlays" in tags
    assert {"iou/0", "iou/1", "iou/2"} <= tags
    # The overlays are labelled and large enough to read: three 128 px
    # columns (the 24 px host crops enlarged) under titles, a legend
    # below; the train run shows the jointly augmented inputs.
    overlays = _last_image(tmp_path / "run/logs/validation",
                           "segmentation_overlays")
    assert overlays.shape[1] >= 3 * 128
    assert overlays.shape[0] > 20 + 4 * 128
    augmented = _last_image(tmp_path / "run/logs/train",
                            "inputs/augmented")
    # Two columns of image | mask pairs.
    assert augmented.shape[1] > augmented.shape[0] > 96
    classes = json.loads((tmp_path / "run/classes.json").read_text())
    assert classes["class_names"] == ["0", "1", "2"]

    # Evaluation at each image's own size (24 x 32, not the host's 32).
    figures = evaluate.evaluate(recipe, verbose=False)
    assert figures["task"] == "segmentation"
    assert figures["split"] == "validation" and figures["num_examples"] == 8
    confusion = np.zeros((3, 3), np.int64)
    files = sorted(glob.glob(str(tmp_path / "shards/validation-*")))
    for image, mask in segmentation_pipeline.read_segmentation_shards(files):
        assert image.shape[:2] == (24, 32)
        predicted = model(image[None]).numpy().argmax(-1)[0]
        valid = mask.numpy() != 255
        np.add.at(confusion, (mask.numpy()[valid], predicted[valid]), 1)
    assert figures["pixels"] == confusion.sum() == 8 * 23 * 32
    iou = np.diag(confusion) / (confusion.sum(0) + confusion.sum(1)
                                - np.diag(confusion))
    assert figures["per_class_iou"] == pytest.approx(
        dict(zip("012", iou)))
    assert figures["mean_iou"] == pytest.approx(iou.mean())
    assert figures["pixel_accuracy"] == pytest.approx(
        np.trace(confusion) / confusion.sum())
    assert "mean IoU" in evaluate.format_metrics(figures)

    # Exported (checked in a clean process without tfcnn), served at the
    # input's own size, and predicted to a class-map PNG.
    version = export.export_model(tmp_path / "run",
                                  export_dir=tmp_path / "exported",
                                  name="scenes")
    served = tf.saved_model.load(str(version))
    odd = np.random.default_rng(1).integers(0, 256, (2, 37, 45, 3))
    odd = odd.astype(np.uint8)
    encoded = [tf.io.encode_png(image).numpy() for image in odd]
    class_map = served.signatures["serving_default"](
        image_bytes=tf.constant(encoded))["class_map"]
    assert class_map.dtype == tf.int32 and class_map.shape == (2, 37, 45)
    both = served.signatures["predict_probabilities"](
        image_bytes=tf.constant(encoded[:1]))
    assert both["probabilities"].shape == (1, 37, 45, 3)
    np.testing.assert_array_equal(
        both["class_map"], model(odd[:1]).numpy().argmax(-1))
    (tmp_path / "scene.png").write_bytes(encoded[0])
    result = predict.predict(version, [str(tmp_path / "scene.png")],
                             output_dir=tmp_path / "maps")
    written = result["predictions"][0]
    assert written["class_map"] == str(tmp_path / "maps/scene_class_map.png")
    before = (tmp_path / "maps/scene_class_map.png").read_bytes()
    # Never over an existing class map: one line naming it, nothing
    # written.
    with pytest.raises(DataError, match="scene_class_map.png exists"):
        predict.predict(version, [str(tmp_path / "scene.png")],
                        output_dir=tmp_path / "maps")
    assert (tmp_path / "maps/scene_class_map.png").read_bytes() == before
    with Image.open(written["class_map"]) as image:
        assert image.size == (45, 37) and image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image), class_map[0])
    assert sum(written["pixel_share"].values()) == pytest.approx(1.0)
    assert "class map" in predict.format_predictions(result)

    # tfcnn serve answers the same class map over TF Serving's REST API.
    with server_lib.BackgroundServer(tmp_path / "exported") as running:
        answer = requests.post(
            running.url + "/v1/models/scenes:predict", timeout=120,
            json={"instances": [{"b64": base64.b64encode(e).decode()}
                                for e in encoded]})
    assert answer.status_code == 200, answer.text
    served_maps = np.array([p["class_map"] if isinstance(p, dict) else p
                            for p in answer.json()["predictions"]])
    np.testing.assert_array_equal(served_maps, class_map.numpy())


def _last_image(folder, tag):
    """The last ``tag`` image written to the event files in ``folder``."""
    found = None
    for path in sorted(glob.glob(str(folder / "*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    found = value.tensor.string_val[2]
    return tf.io.decode_png(found).numpy()


class _VoidMasks(keras.layers.Layer):
    """Joint augmentation that makes every mask pixel void."""

    def call(self, inputs, training=False):
        masks = inputs["segmentation_masks"]
        return {"images": inputs["images"],
                "segmentation_masks": keras.ops.full_like(masks, 255)}


def test_train_step_augments_images_and_masks_jointly(tmp_path):
    network = TASK.build_inference_model(_recipe(tmp_path), 3)
    model = semantic_segmentation.JointAugmentationModel(
        network, [_VoidMasks(name="void_masks")])
    model.compile(optimizer="sgd", loss=TASK.build_loss(_recipe(tmp_path)),
                  metrics=TASK.build_metrics(3))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    masks = rng.integers(0, 3, (4, 32, 32)).astype(np.uint8)
    before = [w.numpy() for w in network.trainable_weights]
    logs = model.fit(images, masks, batch_size=4, epochs=1, verbose=0)
    # The loss saw the augmented (all void) masks: nothing to learn from.
    assert logs.history["loss"] == [0.0]
    for w0, w1 in zip(before, network.trainable_weights):
        np.testing.assert_array_equal(w0, w1.numpy())
    # Evaluation sees the masks as they come.
    assert model.evaluate(images, masks, verbose=0, return_dict=True)[
        "loss"] > 0.5
    # The real augmentation crops to data.crop_size on the device.
    recipe = _recipe(tmp_path).replace(data={"crop_size": 24})
    trainer = TASK.build_training_model(recipe, 3)
    assert [type(layer).__name__ for layer in trainer.augmentation] == [
        "RandomScaleCropFlip"]
    restored = semantic_segmentation.JointAugmentationModel.from_config(
        json.loads(json.dumps(trainer.get_config())))
    assert restored.network.count_params() == trainer.network.count_params()


JAX_JOINT_STEP = '''\
import keras
import numpy as np

from tfcnn.augment.segmentation import RandomScaleCropFlip
from tfcnn.losses import PixelCrossEntropy
from tfcnn.tasks import semantic_segmentation

assert keras.backend.backend() == "jax"
keras.utils.set_random_seed(0)
network = keras.Sequential([
    keras.Input((None, None, 3), dtype="uint8"),
    keras.layers.Rescaling(1 / 255),
    keras.layers.Conv2D(3, 1, activation="softmax")])
crop = RandomScaleCropFlip(8, seed=1)
model = semantic_segmentation.JointAugmentationModel(network, [crop])
model.compile(optimizer="sgd",
              loss=PixelCrossEntropy())
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (4, 16, 16, 3)).astype(np.uint8)
masks = rng.integers(0, 3, (4, 16, 16)).astype(np.uint8)
model.fit(images, masks, batch_size=4, epochs=1, verbose=0)
seeds = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
model.fit(images, masks, batch_size=4, epochs=1, verbose=0)
later = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
# Each step drew new crops: the seed state moved on and came back out.
assert seeds and not all(np.array_equal(a, b) for a, b in zip(seeds, later))
print("ok")
'''


@pytest.mark.slow
def test_joint_augmentation_trains_under_jax(tmp_path):
    # JAX's train step is a pure function of its state: the crop's seeds
    # go in and their next values come out (JointAugmentationModel).
    import subprocess
    import sys

    from tests.train.conftest import subprocess_env

    result = subprocess.run(
        [sys.executable, "-c", JAX_JOINT_STEP], timeout=300,
        capture_output=True, text=True,
        env=subprocess_env(KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "ok"
