"""Tests for tfcnn.models.weights: loading by layer name and shape.

The keras.applications models are built here with ``weights=None`` and
random weights (batch-norm statistics and convolution biases included, so
that the bias folding is exercised), saved locally, and loaded into tfcnn's
models; nothing is downloaded.
"""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcnn.models
from tfcnn import recipe as recipe_lib
from tfcnn.errors import RecipeError
from tfcnn.errors import WeightsError
from tfcnn.models import weights as weights_lib
from tfcnn.train import fit
from tfcnn.train.strategy import mirrored

SIZE = 32


def randomize(model, seed=0, input_scale=100.0):
    """Random weights whose activations stay O(1) on caffe-mode inputs."""
    rng = np.random.default_rng(seed)
    first = True
    for variable in model.weights:
        shape, name = tuple(variable.shape), variable.name
        if name == "kernel":
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0, 1, shape) * np.sqrt(1.0 / fan_in)
            if first:  # inputs of +-100 pixel units
                value /= input_scale
                first = False
        elif name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:  # bias, beta, moving_mean
            value = rng.normal(0, 0.1, shape)
        variable.assign(value.astype("float32"))


def raw_images(n=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, SIZE, SIZE, 3)).astype(np.uint8)


def tfcnn_recipe(name, weights, **model):
    return recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic", "crop_size": SIZE,
                 "resize_size": SIZE},
        "augment": {"flip": False, "pca_lighting": 0.0, "mean": "caffe"},
        "model": {"name": name, "weights": str(weights), **model},
    })


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """keras.applications VGG16 (.h5, root layout like its downloads) and
    ResNet50 (.weights.h5), 10 classes at 32x32, with their probabilities
    on ``raw_images()``."""
    folder = tmp_path_factory.mktemp("keras_applications")
    images = raw_images().astype("float32")
    files = {}
    vgg = keras.applications.VGG16(weights=None, input_shape=(SIZE, SIZE, 3),
                                   classes=10)
    randomize(vgg)
    full = folder / "vgg16_full.h5"
    vgg.save(full)  # the legacy format: weights under "model_weights"
    with h5py.File(full) as src, h5py.File(folder / "vgg16.h5", "w") as dst:
        for key, value in src["model_weights"].attrs.items():
            dst.attrs[key] = value
        for key in src["model_weights"]:
            src.copy(src["model_weights"][key], dst, key)
    files["vgg16"] = (folder / "vgg16.h5", vgg.predict(
        keras.applications.vgg16.preprocess_input(images.copy()), verbose=0))
    files["vgg16_full"] = (full, files["vgg16"][1])
    del vgg
    resnet = keras.applications.ResNet50(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=10)
    randomize(resnet, seed=2)
    resnet.save_weights(folder / "resnet50.weights.h5")
    files["resnet50"] = (folder / "resnet50.weights.h5", resnet.predict(
        keras.applications.resnet.preprocess_input(images.copy()),
        verbose=0))
    keras.backend.clear_session(free_memory=False)
    return files


@pytest.mark.slow
@pytest.mark.parametrize("key,name", [("vgg16", "vgg16"),
                                      ("vgg16_full", "vgg16"),
                                      ("resnet50", "resnet50")])
def test_same_probabilities_as_keras_applications(keras_files, key, name,
                                                   capsys):
    path, expected = keras_files[key]
    # Not saturated: the comparison means something.
    assert expected.max() < 0.99 and expected.min() > 1e-4
    model = fit.build_training_model(tfcnn_recipe(name, path), 10)
    assert f"train: loaded {len(model.get_layer(name).weights)} of " \
        in capsys.readouterr().err
    probabilities = model.predict(raw_images(), verbose=0)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_full_load_reports_nothing_new_and_folds_every_bias(keras_files):
    network = tfcnn.models.build("resnet50", input_shape=(SIZE, SIZE, 3),
                                 num_classes=10)
    report = weights_lib.load_weights(network, keras_files["resnet50"][0])
    # keras.applications' ResNet50: 53 convolutions with biases, 53 batch
    # norms, the classifier; tfcnn's convolutions have no bias.
    assert report.total == len(network.weights) == 53 + 53 * 4 + 2
    assert report.new == () and report.unused == ()


@pytest.mark.slow
def test_partial_load_names_exactly_what_stays_new(keras_files):
    network = tfcnn.models.build("vgg16", input_shape=(SIZE, SIZE, 3),
                                 num_classes=7)
    before = network.get_layer("logits").get_weights()
    report = weights_lib.load_weights(network, keras_files["vgg16"][0])
    assert report.new == ("logits/kernel", "logits/bias")
    assert report.unused == ("predictions/kernel", "predictions/bias")
    assert len(report.loaded) == report.total - 2 == 30
    assert report.message() == (
        f"loaded 30 of 32 weight tensors from {keras_files['vgg16'][0]}; "
        "new: logits/kernel, logits/bias; unused from the file: "
        "predictions/kernel, predictions/bias")
    for old, now in zip(before, network.get_layer("logits").get_weights()):
        np.testing.assert_array_equal(old, now)  # fresh init kept


def _lenet_run(tmp_path, num_classes):
    recipe = recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic", "crop_size": 16,
                 "resize_size": 20},
        # mean_subtraction has weights: not the network's, never loaded.
        "augment": {"mean": "channel", "flip": False, "pca_lighting": 0.0},
        "model": {"name": "lenet5"}})
    keras.utils.set_random_seed(3)
    model = fit.build_training_model(recipe, num_classes)
    run = tmp_path / "run"
    run.mkdir()
    fit.save_inference_model(model, run / "model.keras")
    return run, model


def test_run_directory_and_keras_file_load_the_network(tmp_path):
    run, trained = _lenet_run(tmp_path, 5)
    source = trained.get_layer("lenet5")
    for path in (run, run / "model.keras"):
        network = tfcnn.models.build("lenet5", input_shape=(16, 16, 3),
                                     num_classes=3)
        report = weights_lib.load_weights(network, path)
        assert report.new == ("logits/kernel", "logits/bias")
        assert report.unused == ("logits/kernel", "logits/bias")
        assert len(report.loaded) == len(network.weights) - 2
        for layer in network.layers:
            if layer.weights and layer.name != "logits":
                for a, b in zip(layer.get_weights(),
                                source.get_layer(layer.name).get_weights()):
                    np.testing.assert_array_equal(a, b)


def test_weights_h5_of_a_tfcnn_model(tmp_path):
    _, trained = _lenet_run(tmp_path, 5)
    path = tmp_path / "lenet.weights.h5"
    trained.save_weights(path)
    network = tfcnn.models.build("lenet5", input_shape=(16, 16, 3),
                                 num_classes=5)
    report = weights_lib.load_weights(network, path)
    assert report.new == () and report.unused == ()
    for a, b in zip(network.get_weights(),
                    trained.get_layer("lenet5").get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("content,name,match", [
    (None, "missing.h5", "file not found"),
    (b"not hdf5", "bad.h5", "not an HDF5 weights file"),
    (b"not a zip", "bad.keras", "not a Keras model file"),
    (b"", "weights.npz", "must be a tfcnn run directory"),
])
def test_bad_sources_are_weights_errors(tmp_path, content, name, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    network = tfcnn.models.build("lenet5", input_shape=(16, 16, 3),
                                 num_classes=3)
    with pytest.raises(WeightsError, match=match):
        weights_lib.load_weights(network, path)


@pytest.mark.parametrize("layer_names, weight_names, match", [
    (["conv"], None, "layer_names lists 'conv', which is no group"),
    (b"conv", None, "attribute layer_names must be a list of names. "
                    "Received: "),
    (["dense"], ["dense/kernel:0"], "layer 'dense' lists weight "
                                    "'dense/kernel:0', which is no dataset"),
    (["dense"], b"dense/kernel:0", "/dense attribute weight_names must be"),
])
def test_malformed_h5_weights_are_one_line_errors(tmp_path, layer_names,
                                                  weight_names, match):
    import h5py

    path = tmp_path / "malformed.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = layer_names
        if weight_names is not None:
            f.create_group("dense").attrs["weight_names"] = weight_names
    network = tfcnn.models.build("lenet5", input_shape=(16, 16, 3),
                                 num_classes=3)
    with pytest.raises(WeightsError, match=match) as caught:
        weights_lib.load_weights(network, path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_directory_without_a_model_is_an_error(tmp_path):
    network = tfcnn.models.build("lenet5", input_shape=(16, 16, 3),
                                 num_classes=3)
    with pytest.raises(WeightsError, match="without model.keras"):
        weights_lib.load_weights(network, tmp_path)


def test_weights_matching_nothing_is_an_error_not_a_random_start(tmp_path):
    _, trained = _lenet_run(tmp_path, 5)
    path = tmp_path / "lenet.weights.h5"
    trained.save_weights(path)
    network = tfcnn.models.build("resnet18", input_shape=(32, 32, 3),
                                 num_classes=3, width_multiplier=0.125)
    with pytest.raises(WeightsError, match="no tensor of .* matches"):
        weights_lib.load_weights(network, path)


def test_imagenet_is_for_keras_applications_models_only():
    network = tfcnn.models.build("lenet5", input_shape=(16, 16, 3),
                                 num_classes=3)
    with pytest.raises(RecipeError, match="available for vgg16"):
        weights_lib.load_weights(network, "imagenet", model_name="lenet5")


def test_imagenet_asks_keras_applications_and_reports_failure(monkeypatch):
    calls = []

    def offline(**kwargs):
        calls.append(kwargs)
        raise ConnectionError("URL fetch failure")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    network = tfcnn.models.build("resnet50", input_shape=(SIZE, SIZE, 3),
                                 num_classes=3, width_multiplier=0.25)
    with pytest.raises(WeightsError, match="could not provide the ImageNet"):
        weights_lib.load_weights(network, "imagenet", model_name="resnet50")
    # Not 224x224: keras.applications has no classifier for this size.
    assert calls == [{"weights": "imagenet", "include_top": False,
                      "input_shape": (SIZE, SIZE, 3)}]


def test_imagenet_weights_pick_caffe_preprocessing(monkeypatch):
    def local_vgg16(weights, include_top, input_shape):
        assert weights == "imagenet"
        model = keras.applications.vgg16.VGG16(
            weights=None, include_top=include_top, input_shape=input_shape)
        randomize(model)
        return model

    monkeypatch.setattr(keras.applications, "VGG16", local_vgg16)
    recipe = tfcnn_recipe("vgg16", "imagenet")
    recipe = recipe.replace(augment={"mean": recipe_lib.MeanMode.AUTO})
    model = fit.build_training_model(recipe, 4)
    assert model.get_layer("mean_subtraction").mode == "caffe"
    network = model.get_layer("vgg16")
    assert np.abs(network.get_layer("block1_conv1_conv").kernel).max() > 0


def test_mirrored_replicas_hold_the_loaded_weights(tmp_path):
    _, trained = _lenet_run(tmp_path, 5)
    path = tmp_path / "lenet.weights.h5"
    trained.save_weights(path)
    strategy = mirrored(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        keras.utils.set_random_seed(9)
        network = tfcnn.models.build("lenet5", input_shape=(16, 16, 3),
                                     num_classes=5)
        weights_lib.load_weights(network, path)
    expected = trained.get_layer("lenet5").get_weights()

    def read():  # each replica reads its own copy
        return [tf.identity(v.value) for v in network.weights]

    per_replica = strategy.run(read)
    for tensor, value in zip(per_replica, expected):
        replicas = strategy.experimental_local_results(tensor)
        assert len(replicas) == 2
        for replica in replicas:
            np.testing.assert_array_equal(replica.numpy(), value)


def test_a_run_of_other_classes_gives_no_classifier(tmp_path):
    run, _ = _lenet_run(tmp_path, 3)
    (run / "classes.json").write_text('{"class_names": ["0", "1", "2"]}')
    for class_names, new in ((["7", "8", "9"], ("logits/kernel",
                                                "logits/bias")),
                             (["0", "1", "2"], ()),
                             (None, ())):
        network = tfcnn.models.build("lenet5", input_shape=(16, 16, 3),
                                     num_classes=3)
        report = weights_lib.load_weights(network, run / "model.keras",
                                          class_names=class_names)
        assert report.new == new, class_names


def test_weights_until_keeps_the_layers_after_it_fresh(tmp_path):
    run, trained = _lenet_run(tmp_path, 5)
    source = trained.get_layer("lenet5")
    network = tfcnn.models.build("lenet5", input_shape=(16, 16, 3),
                                 num_classes=5)
    fresh = {name: network.get_layer(name).get_weights()
             for name in ("fc1", "fc2", "logits")}
    report = weights_lib.load_weights(network, run, until="conv2")
    assert report.loaded == ("conv1/kernel", "conv1/bias", "conv2/kernel",
                             "conv2/bias")
    assert report.new == tuple(f"{layer}/{weight}"
                               for layer in ("fc1", "fc2", "logits")
                               for weight in ("kernel", "bias"))
    assert report.unused == report.new  # the file's top went nowhere
    for name in ("conv1", "conv2"):
        for a, b in zip(network.get_layer(name).get_weights(),
                        source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    for name, weights in fresh.items():
        for a, b in zip(network.get_layer(name).get_weights(), weights):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(RecipeError, match="weights_until: lenet5 has no "
                                          "layer 'conv9'"):
        weights_lib.load_weights(network, run, until="conv9")


def test_weights_until_needs_weights():
    with pytest.raises(RecipeError, match="weights_until needs "
                                          "model.weights"):
        recipe_lib.ModelConfig(name="lenet5", weights_until="conv2")
