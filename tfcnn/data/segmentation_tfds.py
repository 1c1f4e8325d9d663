"""tfds segmentation datasets prepared on disk as a segmentation source.

A tfds dataset with an image feature and a mask feature (a one-channel
``tfds.features.Image`` of class ids, e.g. oxford_iiit_pet's
``segmentation_mask``) feeds the segmentation pipeline like shards do:
``read_segmentation_tfds`` yields ``(image bytes, mask bytes)`` pairs, not
decoded by tfds (``SkipDecoding``), which
``tfcnn.data.segmentation_pipeline.make_segmentation_dataset`` decodes the
way it decodes shards (image bilinear, mask nearest neighbour). Nothing is
ever downloaded: the dataset must already be prepared in ``data_dir``.

The mask values are the class ids as tfds stores them, 255 counting as
void (oxford_iiit_pet's trimap stores 1 pet, 2 background, 3 border).
"""

import tensorflow as tf

from tfcnn.data import readers
from tfcnn.data import segmentation_features
from tfcnn.errors import DataError
from tfcnn.label_values import IGNORE_VALUE


def describe_segmentation_tfds(name, *, mask_key, data_dir=None,
                               class_names=None):
    """Describes a prepared tfds segmentation dataset.

    Args:
        name: str, the tfds dataset name.
        mask_key: str, the mask feature (a one-channel image).
        data_dir: str, Path or None, the tfds data folder; None is tfds'
            default. Defaults to None.
        class_names: sequence of str or None; None names the classes by
            id, up to the largest id in the first split's masks (one pass
            over them). Defaults to None.

    Returns:
        ``tfcnn.data.readers.TfdsSource`` whose ``label_key`` is the mask.

    Raises:
        DataError: the dataset is not prepared, or has no such mask or no
            RGB image feature.
    """
    builder = readers._tfds_builder(name, data_dir)
    image_key = _keys(builder.info, name, mask_key)
    counts = {split: int(info.num_examples)
              for split, info in builder.info.splits.items()}
    if class_names is None:
        first = "train" if "train" in counts else next(iter(counts))
        class_names = [str(i) for i in range(_largest_id(
            read_segmentation_tfds(name, first, mask_key=mask_key,
                                   data_dir=data_dir)) + 1)]
    return readers.TfdsSource(
        name=name, data_dir=str(data_dir or ""),
        class_names=list(class_names), image_key=image_key,
        label_key=mask_key, counts=counts,
        prepared_dir=str(builder.data_dir))


def read_segmentation_tfds(name, split, *, mask_key, data_dir=None):
    """Reads a split as ``(image bytes, mask bytes)`` pairs.

    Args:
        name: str, the tfds dataset name.
        split: str, a tfds split (``"train"``, ``"test[:50%]"``, ...).
        mask_key: str, the mask feature.
        data_dir: str, Path or None. Defaults to None.

    Returns:
        ``tf.data.Dataset`` of two scalar strings, in the dataset's order;
        ``make_segmentation_dataset`` takes it as its source.

    Raises:
        DataError: the dataset, split or feature is missing.
    """
    import tensorflow_datasets as tfds

    builder = readers._tfds_builder(name, data_dir)
    image_key = _keys(builder.info, name, mask_key)
    try:
        dataset = builder.as_dataset(
            split=split, shuffle_files=False,
            decoders={image_key: tfds.decode.SkipDecoding(),
                      mask_key: tfds.decode.SkipDecoding()})
    except (KeyError, ValueError, AssertionError) as error:
        raise DataError(
            f"tfds dataset {name} in {data_dir} has no split {split!r}: "
            f"{error}. Received: split={split!r}") from None
    return dataset.map(lambda example: (example[image_key],
                                        example[mask_key]),
                       num_parallel_calls=tf.data.AUTOTUNE)


def _keys(info, name, mask_key):
    """Checks the mask feature; returns the image feature's key."""
    import tensorflow_datasets as tfds

    images = {key: feature for key, feature in info.features.items()
              if isinstance(feature, tfds.features.Image)}
    mask = images.get(mask_key)
    if mask is None or mask.shape[-1] != 1:
        raise DataError(
            f"tfds dataset {name!r} has no one-channel image feature "
            f"{mask_key!r} to read as masks (its image features: "
            f"{', '.join(sorted(images)) or 'none'}). "
            f"Received: mask_key={mask_key!r}")
    rgb = [key for key, feature in images.items()
           if key != mask_key and feature.shape[-1] == 3]
    if not rgb:
        raise DataError(
            f"tfds dataset {name!r} has no RGB image feature besides "
            f"{mask_key!r}. Received: features={list(info.features)}")
    supervised = info.supervised_keys
    if isinstance(supervised, tuple) and supervised and supervised[0] in rgb:
        return supervised[0]
    return "image" if "image" in rgb else rgb[0]


def _largest_id(pairs):
    """The largest class id (void left out) in the masks of ``pairs``."""

    def largest(image, mask):
        del image
        mask = segmentation_features.decode_mask(mask)
        return tf.reduce_max(tf.where(mask == IGNORE_VALUE,
                                      tf.zeros_like(mask), mask))

    per_mask = pairs.map(largest, num_parallel_calls=tf.data.AUTOTUNE)
    return int(per_mask.reduce(tf.constant(0, tf.uint8), tf.maximum))
