"""Random seeds for augmentation layers that differ from replica to replica.

Keras' random layers draw from a ``keras.random.SeedGenerator`` whose state
is one mirrored variable, so under ``MirroredStrategy`` every replica draws
the same numbers: image ``i`` of each replica's slice gets the same crop and
flip. Folding the replica id into the seed gives each replica its own
stream, so the global batch is augmented as if on one device.
"""

import tensorflow as tf


def replica_seed(generator):
    """Returns the next seed of ``generator``, distinct for each replica.

    Args:
        generator: ``keras.random.SeedGenerator``.

    Returns:
        ``[2]`` int32 seed tensor for ``tf.random.stateless_*`` ops
        (``keras.random`` takes no seed tensors).
    """
    seed = tf.cast(generator.next(), tf.int64)
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    if not (isinstance(replica, int) and replica == 0):
        seed = tf.random.experimental.stateless_fold_in(
            seed, tf.cast(replica, tf.int64))
    # The stateless ops want int32 seeds under XLA; keras does the same.
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
