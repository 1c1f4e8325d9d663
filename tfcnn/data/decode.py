"""Stage 1 of the input pipeline: serialized Examples parsed by the schema."""

import tensorflow as tf

from tfcnn.data import features


def decode(serialized):
    """Parses one serialized ``tf.train.Example`` into a dict of tensors.

    Args:
        serialized: scalar string tensor, one record of a shard.

    Returns:
        dict keyed by the constants in ``tfcnn.data.features``.
    """
    return tf.io.parse_single_example(serialized, features.FEATURE_SPEC)
