"""keras.applications' classifiers through tfcnn's registry and weights."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcnn.models
from tfcnn.augment.mean import MeanSubtraction
from tfcnn.errors import UnknownModelError
from tfcnn.models import applications
from tfcnn.models import weights
from tfcnn.preprocessing_modes import MeanMode
from tfcnn.recipe import ModelConfig

# The smallest variant of each family, at the smallest input Keras takes.
FAMILIES = {
    "convnext_tiny": 32, "efficientnet_b0": 32, "efficientnetv2_b0": 32,
    "mobilenet": 32, "mobilenet_v2": 32, "mobilenet_v3_small": 32,
    "keras_resnet50": 32, "resnet50v2": 32, "densenet121": 32,
    "xception": 71, "inception_v3": 75, "inception_resnet_v2": 75,
    "nasnet_mobile": 32,
}


def _family(constructor):
    return re.sub(r"(Tiny|Small|XLarge|Large|Base|Mobile|B\d|S|M|L|\d+V2|\d+)$",
                  "", constructor)


def test_every_family_has_a_case_and_each_entry_a_constructor():
    constructors = {app.constructor for app in
                    applications.APPLICATIONS.values()}
    families = {_family(applications.APPLICATIONS[name].constructor)
                for name in FAMILIES}
    for constructor in constructors:
        assert hasattr(keras.applications, constructor), constructor
        assert _family(constructor) in families, constructor
    assert set(applications.APPLICATIONS) <= set(tfcnn.models.list_models())


def test_parameter_counts_are_keras_own():
    # keras.applications' documented counts (keras.io/api/applications)
    # at 224x224 with 1,000 classes.
    assert tfcnn.models.describe("mobilenet_v2")["parameters"] == 3_538_984
    assert tfcnn.models.describe("keras_resnet50")["parameters"] == \
        25_636_712
    assert tfcnn.models.describe("convnext_tiny")["parameters"] == \
        28_589_128


# Every family trains a step at its smallest input. Measured on a loaded
# 2-core CPU, the eager step costs 1-3 s for most families, about 8 s for
# Inception-ResNet V2 and NASNet Mobile, and 9-14 s for ConvNeXt, whose
# grouped (depthwise) 7x7 convolutions Keras' TensorFlow backend compiles
# with XLA on a CPU, once per block.
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_builds_and_trains_a_step(name):
    keras.utils.set_random_seed(0)
    side = FAMILIES[name]
    model = tfcnn.models.build(name, input_shape=(side, side, 3),
                               num_classes=3)
    assert model.input_shape == (None, side, side, 3)
    assert model.output.dtype == "float32"
    assert model.output_shape == (None, 3)
    x = np.random.default_rng(0).uniform(0, 255, (2, side, side, 3))
    x = x.astype("float32")
    y = np.array([0, 2])
    before = [np.array(v) for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
            y, model(x, training=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    keras.optimizers.SGD(0.01).apply(grads, model.trainable_variables)
    assert np.isfinite(float(loss))
    changed = [not np.array_equal(b, np.array(v))
               for b, v in zip(before, model.trainable_variables)]
    assert changed[-1] and sum(changed) > len(changed) // 2


@pytest.mark.slow
@pytest.mark.parametrize("name, constructor, suffix", [
    ("convnext_tiny", "ConvNeXtTiny", ".keras"),
    ("efficientnetv2_b0", "EfficientNetV2B0", ".weights.h5"),
    ("mobilenet_v3_small", "MobileNetV3Small", ".h5"),
])
def test_keras_built_network_gives_the_same_probabilities(
        name, constructor, suffix, tmp_path):
    keras.utils.set_random_seed(1)
    # tfcnn's network first, so Keras' counters differ between the two.
    network = tfcnn.models.build(name, input_shape=(32, 32, 3),
                                 num_classes=4)
    reference = getattr(keras.applications, constructor)(
        weights=None, input_shape=(32, 32, 3), classes=4)
    # Trained-looking batch norm statistics, not the fresh 0 and 1.
    for layer in reference.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(len(layer.name))
            layer.moving_mean.assign(
                rng.normal(0, 0.1, layer.moving_mean.shape))
            layer.moving_variance.assign(
                rng.uniform(0.5, 1.5, layer.moving_variance.shape))
    path = tmp_path / f"reference{suffix}"
    if suffix == ".weights.h5":
        reference.save_weights(path)
    else:
        reference.save(path)
    report = weights.load_weights(network, path)
    assert not report.new, report.message()
    mode = applications.preprocessing_mode(name)
    assert mode == "raw"
    images = keras.Input((32, 32, 3), dtype="uint8")
    through_tfcnn = keras.Model(images, network(MeanSubtraction(mode)(images)))
    x = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3))
    expected = reference(x.astype("float32"), training=False)
    got = through_tfcnn(x.astype("uint8"), training=False)
    np.testing.assert_allclose(np.array(got), np.array(expected), atol=1e-5)


def test_auto_mean_follows_the_family_whatever_the_weights():
    for name, mode in (("convnext_tiny", MeanMode.RAW),
                       ("keras_resnet50", MeanMode.CAFFE),
                       ("densenet121", MeanMode.TORCH),
                       ("xception", MeanMode.TF)):
        assert weights.resolve_mean(
            MeanMode.AUTO, ModelConfig(name=name)) is mode
    assert weights.resolve_mean(
        MeanMode.AUTO, ModelConfig(name="resnet50")) is MeanMode.IMAGE


def test_raw_mode_passes_pixels_through():
    x = np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3).astype("uint8")
    np.testing.assert_array_equal(np.array(MeanSubtraction("raw")(x)), x)


def test_counter_names_match_across_processes():
    renamed = weights.canonical_names(
        ["conv2d_12", "block1_conv1", "conv2d_9", "batch_normalization",
         "conv2d_transpose_3", "mixed_1"])
    assert renamed == {"conv2d_12": "conv2d_1", "conv2d_9": "conv2d",
                       "block1_conv1": "block1_conv1",
                       "batch_normalization": "batch_normalization",
                       "conv2d_transpose_3": "conv2d_transpose",
                       "mixed_1": "mixed_1"}


def test_a_rescaling_after_the_normalization_is_folded(tmp_path):
    # keras.applications' EfficientNet with ImageNet weights: Normalization
    # then Rescaling(1 / sqrt(std)), a layer the network built by tfcnn
    # lacks.
    inputs = keras.Input((4, 4, 3))
    norm = keras.layers.Normalization(name="norm")
    x = norm(inputs)
    norm.adapt(np.random.default_rng(0).uniform(0, 9, (8, 4, 4, 3)))
    x = keras.layers.Rescaling([0.5, 2.0, 1.5])(x)
    with_scale = keras.Model(inputs, keras.layers.Conv2D(
        2, 1, name="conv")(x))
    tensors = weights.fold_rescaling(with_scale)
    inputs = keras.Input((4, 4, 3))
    norm2 = keras.layers.Normalization(name="norm")
    conv = keras.layers.Conv2D(2, 1, name="conv")
    without = keras.Model(inputs, conv(norm2(inputs)))
    path = tmp_path / "folded.h5"
    _write_legacy_h5(path, tensors)
    # Loaded as tfcnn loads, the normalization's statistics take effect.
    weights.load_weights(without, path)
    x = np.random.default_rng(1).uniform(0, 9, (2, 4, 4, 3))
    np.testing.assert_allclose(np.array(without(x)), np.array(with_scale(x)),
                               rtol=1e-5, atol=1e-5)


def _write_legacy_h5(path, tensors):
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in tensors]
        for layer, values in tensors.items():
            group = f.create_group(layer)
            group.attrs["weight_names"] = [
                f"{layer}/{name}".encode() for name in values]
            for name, value in values.items():
                group[f"{layer}/{name}"] = value


# One network per naming rule of the table (every entry was checked the
# same way when the table was written; the large ones take seconds each).
@pytest.mark.parametrize("name", [
    "convnext_tiny", "efficientnet_b0", "efficientnetv2_b0",
    "efficientnetv2_s", "mobilenet", "mobilenet_v2", "keras_resnet101",
    "resnet152v2", "densenet121", "xception"])
def test_feature_layers_have_their_strides(name):
    with keras.StatelessScope(initialize_variables=False):
        inputs = keras.Input((128, 128, 3))
        endpoints = applications.application_features(inputs, name)
        assert {stride: 128 // tensor.shape[1]
                for stride, tensor in endpoints.items()} == {
            4: 4, 8: 8, 16: 16, 32: 32}


def test_imagenet_comes_from_keras_own_constructor(monkeypatch):
    # Keras' EfficientNetB0 "with ImageNet weights", built offline: the
    # same constructor with weights=None, whose statistics tfcnn takes.
    calls = []  # tfcnn's own build calls it too, with weights=None
    original = keras.applications.EfficientNetB0

    def offline(weights, include_top, **kwargs):
        calls.append((weights, include_top, kwargs))
        model = original(weights=None, include_top=include_top, **kwargs)
        norm = next(layer for layer in model.layers
                    if isinstance(layer, keras.layers.Normalization))
        norm.set_weights([np.full(3, 0.5), np.full(3, 4.0), np.array(1)])
        return model

    monkeypatch.setattr(keras.applications, "EfficientNetB0", offline)
    network = tfcnn.models.build("efficientnet_b0", input_shape=(32, 32, 3),
                                 num_classes=3)
    report = weights.load_weights(network, "imagenet",
                                  model_name="efficientnet_b0")
    # Not 224x224: no classifier; every backbone tensor loaded by name
    # (its normalization's counter name too), the classifier new.
    assert calls[-1] == ("imagenet", False, {"input_shape": (32, 32, 3)})
    assert set(report.new) == {"logits/kernel", "logits/bias"}
    norm = next(layer for layer in network.layers
                if isinstance(layer, keras.layers.Normalization))
    np.testing.assert_allclose(np.array(norm.variance), 4.0)


def test_head_and_from_layer_freeze_keras_layers():
    from tfcnn.train.freeze import Freezer

    network = tfcnn.models.build("mobilenet_v2", input_shape=(32, 32, 3),
                                 num_classes=3)
    freezer = Freezer(network)

    def training():
        return [layer.name for layer in network.layers
                if layer.trainable_weights]

    freezer.apply("head")
    assert training() == ["logits"]
    freezer.apply("from:Conv_1")
    assert training() == ["Conv_1", "Conv_1_bn", "logits"]


def test_regnet_is_refused_saying_keras_has_none():
    # Keras 3's keras.applications has no RegNet; asking for one names that
    # instead of listing every registered model.
    assert not any("regnet" in name.lower()
                   for name in dir(keras.applications))
    for name in ("regnetx002", "RegNetY040"):
        with pytest.raises(UnknownModelError) as error:
            tfcnn.models.build(name, num_classes=3)
        message = str(error.value)
        assert "keras.applications has no RegNet" in message, message
        assert "\n" not in message and "xception" not in message
