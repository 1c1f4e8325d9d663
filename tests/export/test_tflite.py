"""TFLite export (tfcnn.export.tflite), run with tf.lite.Interpreter."""

import keras
import numpy as np
import pytest

from tfcnn.augment.mean import MeanSubtraction
from tfcnn.errors import DataError
from tfcnn.export import tflite
from tfcnn.layers import GroupNormalization
from tfcnn.layers import LocalResponseNormalization
from tfcnn.layers import TransposedConv2D


def _colour_data(count, seed, size=16):
    """Images whose class is the brightest channel: learnable in a few
    hundred steps, so accuracy means something."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = rng.integers(0, 140, (count, size, size, 3))
    for image, label in zip(images, labels):
        image[..., label] += 100
    return images.astype(np.uint8), labels


def _trained_classifier():
    # The inference-model contract: uint8 in, preprocessing layers, LRN,
    # group norm and dilated convolution, float32 probabilities out.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), dtype="uint8", name="image")
    x = MeanSubtraction("channel", mean=[120.0] * 3, std=[60.0] * 3)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(x)
    x = LocalResponseNormalization(name="lrn")(x)
    x = keras.layers.Conv2D(8, 3, dilation_rate=2, activation="relu",
                            name="conv2")(x)
    x = GroupNormalization(groups=2, name="gn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32",
                                      name="predictions")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.01),
                  "sparse_categorical_crossentropy", jit_compile=False)
    images, labels = _colour_data(256, 0)
    model.fit(images, labels, batch_size=32, epochs=4, verbose=0)
    return model


@pytest.fixture(scope="module")
def classifier():
    return _trained_classifier()


def test_float_model_agrees_with_keras(classifier, tmp_path):
    path = tflite.write(classifier, tmp_path / "m.tflite",
                        class_names=["r", "g", "b"])
    runner = tflite.TFLiteModel(path)
    assert runner.class_names == ["r", "g", "b"]
    assert runner.image_size == (16, 16)
    images, _ = _colour_data(40, 1)
    np.testing.assert_allclose(
        runner(images), np.array(classifier(images, training=False)),
        atol=1e-4)
    with pytest.raises(DataError, match="exists already"):
        tflite.write(classifier, path, class_names=["r", "g", "b"])


@pytest.mark.slow
def test_quantized_models_lose_at_most_a_point(classifier, tmp_path):
    images, labels = _colour_data(300, 2)
    float_accuracy = np.mean(np.argmax(np.array(
        classifier(images, training=False)), -1) == labels)
    assert float_accuracy > 0.9
    calibration, _ = _colour_data(50, 3)
    sizes = {}
    for quantization in ("dynamic", "int8"):
        path = tflite.write(
            classifier, tmp_path / f"{quantization}.tflite",
            class_names=["r", "g", "b"], quantization=quantization,
            representative=list(calibration))
        sizes[quantization] = path.stat().st_size
        accuracy = np.mean(np.argmax(tflite.TFLiteModel(path)(images), -1)
                           == labels)
        assert accuracy >= float_accuracy - 0.01, (quantization, accuracy)


def test_segmentation_class_map_agrees(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3), dtype="uint8", name="image")
    x = MeanSubtraction("none")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same",
                            activation="relu")(x)
    x = TransposedConv2D(4, 4, strides=2, padding="same",
                         kernel_initializer="bilinear")(x)
    outputs = keras.layers.Softmax(dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    path = tflite.write(model, tmp_path / "seg.tflite",
                        class_names=list("abcd"), image_size=32)
    runner = tflite.TFLiteModel(path)
    assert runner.output == "class_map"
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3))
    expected = np.argmax(np.array(model(images.astype("uint8"))), -1)
    got = runner(images)
    assert got.shape == (3, 32, 32)
    assert np.mean(got == expected) >= 0.99


def test_bad_quantization_and_missing_calibration(classifier):
    with pytest.raises(ValueError, match="Received: quantization='int4'"):
        tflite.convert(classifier, quantization="int4")
    with pytest.raises(ValueError, match="representative images"):
        tflite.convert(classifier, quantization="int8")


@pytest.mark.slow
def test_export_command_and_predict_run_a_tflite(tmp_path, capsys):
    from PIL import Image

    from tests.train.conftest import tiny_recipe
    from tfcnn import cli
    from tfcnn.train import fit

    recipe = tiny_recipe(tmp_path / "run", epochs=1)
    fit.train(recipe, verbose=0)
    run = str(tmp_path / "run")
    out = str(tmp_path / "lite")
    for quantization in ("float32", "int8"):
        assert cli.main(["export", run, "--format", "tflite",
                         "--quantization", quantization, "--export-dir",
                         out, "--name", "tiny"]) == 0
    assert "wrote TFLite model" in capsys.readouterr().out
    image = tmp_path / "x.png"
    Image.fromarray(np.full((30, 20, 3), 90, np.uint8)).save(image)
    assert cli.main(["predict", f"{out}/tiny_int8.tflite", str(image),
                     "--top-k", "2", "--json"]) == 0
    import json

    result = json.loads(capsys.readouterr().out)
    assert len(result["predictions"][0]["class_names"]) == 2
    assert sum(result["predictions"][0]["scores"]) <= 1.0 + 1e-6
    # The float file answers what the trained model answers.
    model = keras.saving.load_model(f"{run}/model.keras")
    lite = tflite.TFLiteModel(f"{out}/tiny.tflite")
    x = np.random.default_rng(0).integers(
        0, 256, (4, *lite.image_size, 3)).astype(np.uint8)
    np.testing.assert_allclose(lite(x), np.array(model(x)), atol=1e-4)
