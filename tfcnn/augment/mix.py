"""MixUp and CutMix over batches: they mix labels, so they run in tf.data.

The training model only sees images, so label-mixing augmentations can't
live inside it; ``mix_batches`` maps Keras' ``MixUp``/``CutMix`` layers over
the host batches instead and turns the labels into one-hot soft labels
(train with ``CategoricalCrossentropy``). Mixed images are rounded back to
uint8 so the host-to-device contract (uint8 ``[B, S, S, 3]``) holds.

Mixing happens at the host size S, before the random crop, so a CutMix box
may fall partly outside the crop the network sees; the label weights are
those of the whole S x S image (the usual approximation when CutMix runs
before cropping). The Keras layers' seed state doesn't carry over from one
pass over a dataset to the next, so a finite dataset iterated once per
epoch gets the same sequence of mixing weights each epoch (on differently
shuffled images); build the pipeline with ``repeat=True`` for one unbroken
random stream.
"""

import keras


def mix_batches(dataset, config, num_classes, seed=0):
    """Applies the recipe's MixUp and/or CutMix to batches.

    With both alphas set, each batch gets one of the two, chosen with
    probability 1/2 (as timm does). With neither, only the labels become
    one-hot.

    Args:
        dataset: ``tf.data.Dataset`` of ``(uint8 [B, S, S, 3], int [B])``.
        config: ``tfcnn.recipe.AugmentConfig`` (``mixup_alpha``,
            ``cutmix_alpha``).
        num_classes: int, length of the one-hot labels.
        seed: int. Defaults to 0.

    Returns:
        ``tf.data.Dataset`` of ``(uint8 [B, S, S, 3], float32 [B, K])``.

    Raises:
        ValueError: ``num_classes`` < 1.
    """
    # tf.data runs on the host under every Keras backend.
    import tensorflow as tf

    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            "num_classes must be a positive int. Received: "
            f"num_classes={num_classes!r}")
    mixers = []
    if config.mixup_alpha > 0:
        mixers.append(keras.layers.MixUp(alpha=config.mixup_alpha,
                                         seed=seed))
    if config.cutmix_alpha > 0:
        mixers.append(keras.layers.CutMix(factor=config.cutmix_alpha,
                                          seed=seed + 1))

    def mix(batch, coin):
        images, labels = batch
        labels = tf.one_hot(tf.cast(labels, tf.int32), num_classes,
                            dtype=tf.float32)
        if not mixers:
            return images, labels
        if len(mixers) == 1:
            return _apply(mixers[0], images, labels)
        return tf.cond(coin % 2 == 0,
                       lambda: _apply(mixers[0], images, labels),
                       lambda: _apply(mixers[1], images, labels))

    coins = tf.data.Dataset.random(seed=seed + 2,
                                   rerandomize_each_iteration=True)
    # Sequential: the Keras layers advance their seed state per batch, and
    # a fixed order keeps a seeded run reproducible.
    return tf.data.Dataset.zip(dataset, coins).map(mix)


def _apply(layer, images, labels):
    import tensorflow as tf

    out = layer({"images": images, "labels": labels}, training=True)
    mixed = tf.cast(tf.clip_by_value(tf.round(out["images"]), 0, 255),
                    tf.uint8)
    return mixed, tf.cast(out["labels"], tf.float32)
