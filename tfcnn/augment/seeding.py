"""Random numbers for the augmentation layers, on every Keras backend.

Keras' random layers draw from a ``keras.random.SeedGenerator`` whose state
is one mirrored variable, so under TensorFlow's ``MirroredStrategy`` every
replica draws the same numbers: image ``i`` of each replica's slice gets
the same crop and flip. Under the TensorFlow backend, folding the replica
id into the seed gives each replica its own stream, so the global batch is
augmented as if on one device.

Under JAX and PyTorch, ``keras.distribution.DataParallel`` runs one
program over the global batch, so one draw of shape ``[B, ...]`` already
gives each image its own numbers; ``keras.random`` draws them from the
generator, whose state the trainer threads through ``jit`` (stateless).
TensorFlow is imported only under its backend.
"""

import keras


def uniform(generator, shape):
    """Uniform floats in ``[0, 1)``, distinct for each replica.

    Args:
        generator: ``keras.random.SeedGenerator``.
        shape: tuple of ints (or scalar tensors under TensorFlow).

    Returns:
        float32 tensor of ``shape``.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_uniform(shape,
                                           seed=replica_seed(generator))
    return keras.random.uniform(shape, seed=generator)


def normal(generator, shape, stddev):
    """Normal floats with mean 0 and ``stddev``, distinct for each replica.

    Args:
        generator: ``keras.random.SeedGenerator``.
        shape: tuple of ints (or scalar tensors under TensorFlow).
        stddev: float.

    Returns:
        float32 tensor of ``shape``.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_normal(shape, stddev=stddev,
                                          seed=replica_seed(generator))
    return keras.random.normal(shape, stddev=stddev, seed=generator)


def replica_seed(generator):
    """Returns the next seed of ``generator``, distinct for each replica.

    TensorFlow backend only (``tf.distribute`` replicas).

    Args:
        generator: ``keras.random.SeedGenerator``.

    Returns:
        ``[2]`` int32 seed tensor for ``tf.random.stateless_*`` ops
        (``keras.random`` takes no seed tensors).
    """
    import tensorflow as tf

    seed = tf.cast(generator.next(), tf.int64)
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    if not (isinstance(replica, int) and replica == 0):
        seed = tf.random.experimental.stateless_fold_in(
            seed, tf.cast(replica, tf.int64))
    # The stateless ops want int32 seeds under XLA; keras does the same.
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
