"""The sum over a centred window of neighbours along one axis.

Inter-channel LRN (``tfcnn.layers.lrn``) sums the squares of the
``2 r + 1`` channels around each channel; this is that window sum as
shifted slices of a zero-padded tensor, in ``keras.ops`` (any backend).
"""

from keras import ops


def shifted_window_sum(t, radius, axis):
    """Sums the ``2 radius + 1`` entries around each entry along ``axis``.

    Entries beyond the first and last count as zero.

    Args:
        t: tensor with a defined size along ``axis``.
        radius: int >= 0, half the window.
        axis: int, non-negative, the axis to sum along.

    Returns:
        A tensor like ``t``.
    """
    rank = len(t.shape)
    depth = t.shape[axis]
    paddings = [[0, 0]] * rank
    paddings[axis] = [radius, radius]
    padded = ops.pad(t, paddings)
    index = [slice(None)] * rank
    total = None
    for offset in range(2 * radius + 1):
        index[axis] = slice(offset, offset + depth)
        part = padded[tuple(index)]
        total = part if total is None else total + part
    return total
