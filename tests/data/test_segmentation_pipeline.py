"""Tests for tfcnn.data.segmentation_pipeline: host decoding and batches."""

import io

import numpy as np
import tensorflow as tf
from PIL import Image

from tfcnn.data import segmentation_features as features
from tfcnn.data import segmentation_pipeline
from tfcnn.label_values import IGNORE_VALUE


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _blocky_pair(height, width, seed, block=8):
    """An image whose red channel is 20 * class, and its mask."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 5, (height // block + 1, width // block + 1))
    mask = np.kron(classes, np.ones((block, block), int))[:height, :width]
    mask = mask.astype(np.uint8)
    mask[0, :] = IGNORE_VALUE
    image = np.stack([mask * 20, mask, 255 - mask], -1).astype(np.uint8)
    return image, mask


def _write_shard(path, pairs):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i, (image, mask) in enumerate(pairs):
            writer.write(features.make_example(
                _png(image), image_format="png", height=image.shape[0],
                width=image.shape[1], mask_encoded=_png(mask),
                filename=f"{i}.png").SerializeToString())


def test_batches_are_uint8_and_masks_keep_only_source_values(tmp_path):
    pairs = [_blocky_pair(48, 72, seed) for seed in range(5)]
    _write_shard(tmp_path / "train-00000-of-00001.tfrecord", pairs)
    dataset = segmentation_pipeline.make_segmentation_dataset(
        [tmp_path / "train-00000-of-00001.tfrecord"], resize_size=20,
        batch_size=2, training=True, seed=1)
    batches = list(dataset)
    assert len(batches) == 2  # training drops the partial batch
    for images, masks in batches:
        assert images.dtype == tf.uint8 and images.shape == (2, 20, 20, 3)
        assert masks.dtype == tf.uint8 and masks.shape == (2, 20, 20)
        values = set(np.unique(masks.numpy()))
        assert values <= {0, 1, 2, 3, 4, IGNORE_VALUE}


def test_image_and_mask_get_the_same_crop_and_scale():
    image, mask = _blocky_pair(64, 96, seed=3)
    out_image, out_mask = segmentation_pipeline.resize_pair(
        tf.constant(image), tf.constant(mask), 32)
    out_image, out_mask = out_image.numpy(), out_mask.numpy()
    # Nearest neighbour of the centre 64x64 square at 2x: pixel (i, j)
    # comes from source pixel (2i + 1, 16 + 2j + 1).
    expected = mask[1::2, 16 + 1:16 + 64:2]
    np.testing.assert_array_equal(out_mask, expected)
    # Where the mask is a class (not void), the image's green channel
    # averaged over a constant 2x2 block equals it.
    inside = expected != IGNORE_VALUE
    block = image[:, 16:80, 1].reshape(32, 2, 32, 2)
    constant = (block.min((1, 3)) == block.max((1, 3))) & inside
    np.testing.assert_array_equal(out_image[..., 1][constant],
                                  expected[constant])


def test_read_segmentation_shards_keeps_the_own_size(tmp_path):
    pairs = [_blocky_pair(30, 50, 0), _blocky_pair(41, 17, 1)]
    path = tmp_path / "validation-00000-of-00001.tfrecord"
    _write_shard(path, pairs)
    read = list(segmentation_pipeline.read_segmentation_shards([path]))
    for (image, mask), (source_image, source_mask) in zip(read, pairs):
        np.testing.assert_array_equal(image.numpy(), source_image)
        np.testing.assert_array_equal(mask.numpy(), source_mask)


def test_dataset_source_of_arrays():
    image, mask = _blocky_pair(40, 40, 0)
    source = tf.data.Dataset.from_tensors((image, mask[..., None]))
    (images, masks), = segmentation_pipeline.make_segmentation_dataset(
        source, resize_size=20, batch_size=1, training=False)
    assert images.shape == (1, 20, 20, 3) and masks.shape == (1, 20, 20)
    np.testing.assert_array_equal(masks[0].numpy(), mask[1::2, 1::2])


def test_pipeline_on_shards_written_by_ingest(tmp_path):
    from tests.data import segmentation_files
    from tfcnn import tasks
    from tfcnn.data.manifest import Manifest

    src, out = tmp_path / "src", tmp_path / "out"
    masks = segmentation_files.make_pairs(src, 6, num_classes=4)
    tasks.ingest(src, out, workers=1, progress=False,
                 validation_split=0.0)
    files = Manifest.load(out).files("train")
    # At S = 24 the 24x32 pairs keep their centre 24x24 square unscaled.
    dataset = segmentation_pipeline.make_segmentation_dataset(
        files, resize_size=24, batch_size=3, training=False)
    images, masks_out = (np.concatenate(parts) for parts in zip(
        *[(i.numpy(), m.numpy()) for i, m in dataset]))
    expected = [mask[:, 4:28] for mask in masks.values()]
    matches = [[np.array_equal(e, m) for e in expected] for m in masks_out]
    # Every source mask comes out exactly once, with its own image.
    assert sorted(row.index(True) for row in matches) == list(range(6))
    for image, mask in zip(images, masks_out):
        np.testing.assert_array_equal(
            image[..., 1], segmentation_files.image_for(mask)[..., 1])


def test_large_jpegs_decoded_at_a_dct_scale_stay_aligned():
    # 600x800 at S = 128: the JPEG decodes at 1/4 scale, and the mask is
    # sampled over the same window.
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 9, (600 // 40, 800 // 40))
    mask = np.kron(coarse, np.ones((40, 40), int)).astype(np.uint8)
    image = np.stack([mask * 25, mask * 25, mask * 25], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    out_image, out_mask = segmentation_pipeline.decode_pair(
        tf.constant(buffer.getvalue()), tf.constant(mask), 128)
    grey = out_image.numpy().astype(int).mean(axis=2)
    ids = out_mask.numpy().astype(int)
    constant = np.ones_like(ids, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            constant &= np.roll(ids, (dy, dx), (0, 1)) == ids
    constant[[0, -1], :] = constant[:, [0, -1]] = False
    assert constant.mean() > 0.6
    assert np.abs(grey - 25 * ids)[constant].max() <= 8


def test_model_garden_shards_without_a_manifest_are_described(tmp_path):
    import pytest

    from tfcnn.data.manifest import Manifest
    from tfcnn.errors import DataError

    pairs = [_blocky_pair(16, 24, seed) for seed in range(4)]
    _write_shard(tmp_path / "train-00000-of-00002", pairs[:3])
    _write_shard(tmp_path / "train-00001-of-00002", pairs[3:])
    _write_shard(tmp_path / "validation-00000-of-00001", pairs[:1])
    manifest = Manifest.from_shards(tmp_path)
    assert manifest.task == "segmentation"
    assert manifest.ignore_value == IGNORE_VALUE
    largest = max(int(mask[mask != IGNORE_VALUE].max())
                  for _, mask in pairs)
    assert manifest.class_names == [str(i) for i in range(largest + 1)]
    assert manifest.count("train") == 4 and manifest.count("validation") == 1
    with pytest.raises(DataError, match="is neither a class id"):
        Manifest.from_shards(tmp_path, class_names=["a", "b"])


def test_mask_window_is_sampled_by_nearest_neighbour_and_clipped():
    # The window of a JPEG decoded at a DCT scale may reach past the mask:
    # rows and columns beyond it repeat the last one.
    rng = np.random.default_rng(4)
    mask = rng.integers(0, 256, (37, 53)).astype(np.uint8)
    top, left, extent, size = 5, 30, 29, 12
    out = segmentation_pipeline._nearest_square(
        tf.constant(mask), top, left, extent, size).numpy()
    offsets = np.floor((np.arange(size) + 0.5) * extent / size).astype(int)
    rows = np.minimum(top + offsets, 36)
    cols = np.minimum(left + offsets, 52)
    np.testing.assert_array_equal(out, mask[rows][:, cols])
