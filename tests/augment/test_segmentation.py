"""Tests for tfcnn.augment.segmentation: image and mask move together."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcnn.augment import segmentation

VOID = segmentation.IGNORE_VALUE


def _pair(batch=4, height=40, width=56, classes=7, seed=0):
    """Images whose red channel is the mask (ids 0..classes-1, no void)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, classes, (batch, height // 4, width // 4))
    masks = np.kron(coarse, np.ones((1, 4, 4), int)).astype(np.uint8)
    images = np.stack([masks, rng.integers(0, 256, masks.shape),
                       np.full_like(masks, 9)], -1).astype(np.uint8)
    return images, masks


@pytest.mark.parametrize("scale_range", [(1.0, 1.0), (0.5, 2.0),
                                         (0.3, 0.6), (1.5, 3.0)])
def test_mask_drawn_from_the_image_stays_equal_to_it(scale_range):
    images, masks = _pair()
    mean = (200.0, 50.0, 9.0)
    layer = segmentation.RandomScaleCropFlip(
        32, scale_range=scale_range, mean=mean, interpolation="nearest",
        seed=3)
    for _ in range(5):
        out = layer({"images": images, "segmentation_masks": masks},
                    training=True)
        image, mask = out["images"].numpy(), out["segmentation_masks"].numpy()
        assert image.dtype == np.uint8 and image.shape == (4, 32, 32, 3)
        assert mask.dtype == np.uint8 and mask.shape == (4, 32, 32)
        padded = mask == VOID
        # Inside: the transformed image's red channel is the mask; padding:
        # the mean colour in the image, void in the mask.
        np.testing.assert_array_equal(image[..., 0][~padded], mask[~padded])
        np.testing.assert_array_equal(image[padded], np.broadcast_to(
            np.array(mean, np.uint8), image[padded].shape))
        if scale_range[1] < 0.8:
            assert padded.any(axis=(1, 2)).all()  # smaller: always padded
        if scale_range[0] > 1.0:
            assert not padded.any()  # larger: never padded


def test_bilinear_images_keep_masks_nearest():
    images, masks = _pair(batch=8, classes=5)
    layer = segmentation.RandomScaleCropFlip(24, scale_range=(0.4, 2.5),
                                             seed=1)
    out = layer({"images": images, "segmentation_masks": masks[..., None]},
                training=True)
    mask = out["segmentation_masks"].numpy()
    assert mask.shape == (8, 24, 24, 1)
    # Only class ids of the source and void: nothing interpolated.
    assert set(np.unique(mask)) <= set(range(5)) | {VOID}
    # Where the image's red channel is an exact id and the 3x3
    # neighbourhood of the mask agrees, bilinear and nearest agree.
    red = out["images"].numpy()[..., 0].astype(int)
    m = mask[..., 0].astype(int)
    same = np.ones_like(m, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            same &= np.roll(m, (dy, dx), (1, 2)) == m
    same[:, [0, -1], :] = same[:, :, [0, -1]] = False
    same &= m != VOID
    assert same.sum() > 500
    np.testing.assert_array_equal(red[same], m[same])


def test_flip_and_identity_scale_is_an_exact_crop():
    images, masks = _pair(batch=16)
    layer = segmentation.RandomScaleCropFlip(32, scale_range=(1.0, 1.0),
                                             seed=5)
    out = layer({"images": images, "segmentation_masks": masks},
                training=True)
    flips = 0
    for image, source in zip(out["images"].numpy(), images):
        crops = {}
        for top in range(40 - 32 + 1):
            for left in range(56 - 32 + 1):
                window = source[top:top + 32, left:left + 32]
                crops[(top, left, False)] = window
                crops[(top, left, True)] = window[:, ::-1]
        hits = [k for k, w in crops.items() if np.array_equal(w, image)]
        assert hits, "the output is no crop (or flipped crop) of the input"
        flips += hits[0][2]
    assert 0 < flips < 16


def test_inference_is_the_identity_and_images_alone_work():
    images, masks = _pair()
    layer = segmentation.RandomScaleCropFlip(16)
    data = {"images": images, "segmentation_masks": masks}
    assert layer(data, training=False) is data
    out = layer(tf.constant(images), training=True)
    assert out.shape == (4, 16, 16, 3)


def test_replicas_draw_their_own_transforms():
    images, _ = _pair(batch=2)
    images = np.concatenate([images[:1]] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = segmentation.RandomScaleCropFlip(24, seed=7)

    @tf.function
    def step(image):
        return layer(image, training=True)

    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(images).batch(2))
    result = strategy.run(step, args=(next(iter(dataset)),))
    first, second = (r.numpy() for r in strategy.experimental_local_results(
        result))
    assert not np.array_equal(first, second)


def test_config_round_trip_and_errors():
    layer = segmentation.RandomScaleCropFlip(
        16, scale_range=(0.75, 1.25), mean=(1, 2, 3), seed=2)
    clone = segmentation.RandomScaleCropFlip.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer))
    assert restored.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="scale_range"):
        segmentation.RandomScaleCropFlip(16, scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="crop_size"):
        segmentation.RandomScaleCropFlip(0)


def test_colour_jitter_changes_the_image_only():
    images, masks = _pair()
    layers = segmentation.build_segmentation_augmentation(
        crop_size=32, scale_range=(1.0, 1.0), flip=False, colour_jitter=0.5,
        seed=4)
    data = {"images": images, "segmentation_masks": masks}
    for layer in layers:
        data = layer(data, training=True)
    mask = data["segmentation_masks"].numpy()
    assert set(np.unique(mask)) <= set(range(7))
    # No scale, no flip: the mask is a crop of the source mask, unchanged.
    assert any(np.array_equal(mask[0], masks[0, t:t + 32, x:x + 32])
               for t in range(9) for x in range(25))
