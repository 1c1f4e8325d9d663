"""Two device-side primitives the augmentation layers share.

``batch_gather`` picks rows or columns per image (``tf.gather`` with
``batch_dims=1`` under TensorFlow, ``keras.ops.take_along_axis`` under the
other backends). ``xla`` compiles a training-only kernel with XLA under
the TensorFlow backend: XLA turns the batched gathers into copies and fuses
casts and selects into one pass, ~10x faster than TensorFlow's CPU kernels
(``benchmarks/pipeline.py``); a served graph never runs these kernels, so
it never needs XLA. JAX compiles the whole training step anyway, so there
the kernel is the plain function. TensorFlow is imported only under its
backend.
"""

import functools

import keras
from keras import ops


def batch_gather(x, indices, axis):
    """``x[b]`` indexed by ``indices[b]`` along ``axis``, for each image.

    Args:
        x: ``[B, ...]`` tensor.
        indices: ``[B, n]`` int tensor.
        axis: int >= 1, the axis of ``x`` to index.

    Returns:
        ``x`` with ``n`` entries along ``axis``.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.gather(x, indices, axis=axis, batch_dims=1)
    shape = [1] * len(x.shape)
    shape[0], shape[axis] = -1, indices.shape[1]
    return ops.take_along_axis(x, ops.reshape(indices, shape), axis=axis)


def xla(reduce_retracing=False):
    """Decorator: XLA-compile the function under the TensorFlow backend.

    Args:
        reduce_retracing: bool, passed to ``tf.function``. Defaults to
            False.

    Returns:
        A decorator; the ``tf.function`` is made on the first call.
    """
    def decorate(fn):
        compiled = []

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if keras.backend.backend() != "tensorflow":
                return fn(*args, **kwargs)
            if not compiled:
                import tensorflow as tf

                compiled.append(tf.function(
                    fn, jit_compile=True,
                    reduce_retracing=reduce_retracing))
            return compiled[0](*args, **kwargs)

        return wrapper

    return decorate
