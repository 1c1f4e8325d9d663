"""Loading models that contain tfcnn's layers.

Keras finds a custom class at load time only if the module that registers it
has been imported. ``load_model`` imports every registering package first, so
callers (evaluation, export, a user's script) need not know which ones a
model file uses.
"""

import keras

from tfcnn import storage


def load_model(path, compile=False):
    """Loads a ``.keras`` file that may hold tfcnn layers.

    Args:
        path: str or Path of a ``.keras`` file, or its URL (Keras copies
            a remote file through ``tf.io.gfile``).
        compile: bool, restore the training configuration too. Defaults to
            False.

    Returns:
        the ``keras.Model``.
    """
    import tfcnn.augment  # noqa: F401  (registers the preprocessing layers)
    import tfcnn.layers  # noqa: F401  (registers the custom layers)
    import tfcnn.models  # noqa: F401  (registers blocks' layers, if any)

    if storage.is_url(path):
        path = str(path)
    return keras.saving.load_model(path, compile=compile)
