"""Tests for tfcnn.augment.build: the preprocessing of the training model."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcnn import augment
from tfcnn.recipe import AugmentConfig
from tfcnn.recipe import MeanMode
from tfcnn.train.strategy import mirrored

S, C = 12, 8
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (4, S, S, 3), dtype=np.uint8)


@dataclasses.dataclass
class Stats:
    """The fields of tfcnn.data.stats.DatasetStats that the builder reads."""

    resize_size: int = S
    mean_image: np.ndarray = dataclasses.field(
        default_factory=lambda: RNG.uniform(0, 255, (S, S, 3)).astype(
            np.float32))
    channel_mean: np.ndarray = dataclasses.field(
        default_factory=lambda: np.float32([100, 110, 120]))
    channel_std: np.ndarray = dataclasses.field(
        default_factory=lambda: np.float32([50, 60, 70]))
    eigenvalues: np.ndarray = dataclasses.field(
        default_factory=lambda: np.float32([5000, 300, 40]))
    eigenvectors: np.ndarray = dataclasses.field(
        default_factory=lambda: np.linalg.qr(RNG.normal(size=(3, 3)))[0]
        .astype(np.float32))


def _model(config=AugmentConfig(), stats=None, seed=0):
    inputs = keras.Input((S, S, 3), dtype="uint8", name="image")
    x = inputs
    for layer in augment.build_preprocessing(config, crop_size=C,
                                             stats=stats, seed=seed):
        x = layer(x)
    return keras.Model(inputs, x)


def test_default_layers_in_order():
    layers = augment.build_preprocessing(AugmentConfig(), crop_size=C)
    assert [type(layer).__name__ for layer in layers] == [
        "RandomOrCentreCrop", "RandomHorizontalFlip", "PCALighting",
        "MeanSubtraction"]


@pytest.mark.parametrize("policy, dtype", [
    ("float32", "float32"), ("mixed_float16", "float16"),
    ("mixed_bfloat16", "bfloat16")])
def test_output_shape_and_compute_dtype(policy, dtype):
    keras.config.set_dtype_policy(policy)
    model = _model()
    for training in (True, False):
        out = model(IMAGES, training=training)
        assert out.shape == (4, C, C, 3)
        assert out.dtype == dtype


def test_inference_is_the_centre_crop_of_the_mean_subtracted_image():
    stats = Stats()
    model = _model(stats=stats)
    expected = (IMAGES - stats.mean_image)[:, 2:10, 2:10]
    np.testing.assert_allclose(model(IMAGES), expected, rtol=1e-6)
    np.testing.assert_allclose(model(IMAGES), model(IMAGES))


def test_training_subtracts_the_centre_of_the_mean_from_every_crop():
    # Without lighting and flip, a training output is some window of the
    # image minus the centre C x C of the mean image (cuda-convnet).
    stats = Stats()
    config = AugmentConfig(pca_lighting=0.0, flip=False)
    out = _model(config, stats)(IMAGES, training=True).numpy()
    centre = stats.mean_image[2:10, 2:10]
    offsets = set()
    for image, crop in zip(IMAGES.astype(np.float32), out):
        windows = {(t, left): image[t:t + C, left:left + C] - centre
                   for t in range(S - C + 1) for left in range(S - C + 1)}
        found = [k for k, w in windows.items()
                 if np.allclose(w, crop, atol=1e-4)]
        assert found
        offsets.add(found[0])
    assert len(offsets) > 1


def test_channel_mode_uses_the_stored_channel_statistics():
    stats = Stats()
    model = _model(AugmentConfig(mean=MeanMode.CHANNEL), stats)
    expected = ((IMAGES - stats.channel_mean) / stats.channel_std)[
        :, 2:10, 2:10]
    np.testing.assert_allclose(model(IMAGES), expected, rtol=1e-5)


def test_lighting_uses_the_dataset_pca_in_unit_pixel_scale():
    stats = Stats()
    layers = augment.build_preprocessing(AugmentConfig(pca_lighting=0.2),
                                         crop_size=C, stats=stats)
    lighting = layers[2]
    assert isinstance(lighting, augment.PCALighting)
    lighting.build((None, S, S, 3))
    np.testing.assert_allclose(lighting.eigenvalues.numpy(),
                               stats.eigenvalues / 255.0**2, rtol=1e-6)
    np.testing.assert_allclose(lighting.eigenvectors.numpy(),
                               stats.eigenvectors)
    assert lighting.stddev == 0.2


def test_switches_turn_layers_off():
    config = AugmentConfig(crop="none", flip=False, pca_lighting=0.0,
                           mean=MeanMode.NONE)
    layers = augment.build_preprocessing(config, crop_size=C)
    assert [type(layer).__name__ for layer in layers] == [
        "Resizing", "MeanSubtraction"]
    out = _model(config)(IMAGES, training=True)
    assert out.shape == (4, C, C, 3)
    assert float(tf.reduce_max(out)) <= 1.0


def test_randaugment_runs_after_the_crop_and_only_in_training():
    config = AugmentConfig(randaugment=0.5, pca_lighting=0.0, flip=False)
    layers = augment.build_preprocessing(config, crop_size=C)
    assert isinstance(layers[1], keras.layers.RandAugment)
    model = _model(config)
    out = model(IMAGES, training=True)
    assert out.shape == (4, C, C, 3)
    plain = _model(AugmentConfig(pca_lighting=0.0, flip=False))
    np.testing.assert_allclose(model(IMAGES), plain(IMAGES), rtol=1e-6)


def test_saved_model_carries_the_statistics(tmp_path):
    stats = Stats()
    model = _model(stats=stats)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(IMAGES), model(IMAGES), rtol=1e-6)
    mean = loaded.get_layer("mean_subtraction").mean.numpy()
    np.testing.assert_array_equal(mean, stats.mean_image)


def test_each_replica_draws_its_own_augmentation():
    strategy = mirrored(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = _model(AugmentConfig(pca_lighting=0.0), seed=4)

    @tf.function
    def step():
        return strategy.run(lambda: model(IMAGES, training=True))

    first, second = strategy.experimental_local_results(step())
    # Same images on both replicas; different crops and flips.
    assert first.shape == second.shape == (4, C, C, 3)
    assert not np.allclose(first, second)


def test_bad_crop_size():
    with pytest.raises(ValueError, match="Received: crop_size=0"):
        augment.build_preprocessing(AugmentConfig(), crop_size=0)


def test_exported_saved_model_serves_without_tfcnn(tmp_path):
    # The served graph holds the inference branch only: centre crop and
    # mean subtraction, no random ops and no XLA.
    stats = Stats()
    model = _model(stats=stats)
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(served.serve(tf.constant(IMAGES)),
                               model(IMAGES), rtol=1e-6)
    graph = (tmp_path / "served" / "saved_model.pb").read_bytes()
    for op in (b"_XlaMustCompile", b"StatelessRandom", b"GatherV2"):
        assert op not in graph


def test_inception_crop_keeps_the_centre_in_training_too():
    # The host has cut the Inception window and placed it in the centre of
    # the host image; the model's crop takes it back, in training as well.
    config = AugmentConfig(crop="inception", flip=False, pca_lighting=0.0,
                           mean=MeanMode.NONE)
    layers = augment.build_preprocessing(config, crop_size=4)
    assert isinstance(layers[0], augment.RandomOrCentreCrop)
    assert not layers[0].random
    images = np.arange(2 * 8 * 8 * 3).reshape(2, 8, 8, 3).astype("uint8")
    np.testing.assert_array_equal(layers[0](images, training=True),
                                  images[:, 2:6, 2:6])
    assert augment.host_crop_size(config, 4) == 4
    assert augment.host_crop_size(AugmentConfig(), 4) is None


def test_imagenet_mean_is_asked_for_by_name():
    from tfcnn.augment.build import mean_subtraction
    from tfcnn.augment.build import needs_stats
    from tfcnn.augment.mean import IMAGENET_MEAN
    from tfcnn.augment.mean import IMAGENET_STD

    layer = mean_subtraction(MeanMode.IMAGENET)
    pixels = np.full((1, 2, 2, 3), 100.0, np.float32)
    expected = (100.0 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    np.testing.assert_allclose(layer(pixels).numpy()[0, 0, 0], expected,
                               rtol=1e-5)
    assert not needs_stats(AugmentConfig(mean=MeanMode.IMAGENET,
                                         pca_lighting=0.1))
    assert needs_stats(AugmentConfig(mean=MeanMode.CHANNEL, pca_lighting=0))
    assert needs_stats(AugmentConfig(mean=MeanMode.NONE, pca_lighting=0.1))
