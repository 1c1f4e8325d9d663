"""The Keras backend that trains: ``train.backend``.

Keras 3 picks its backend once, when it is first imported, from the
``KERAS_BACKEND`` environment variable (else ``~/.keras/keras.json``,
else TensorFlow). ``tfcnn train`` and ``tfcnn run`` therefore read the
recipe first and call ``select`` before anything imports Keras: it sets
``KERAS_BACKEND`` to ``train.backend``, and refuses with one line a
``KERAS_BACKEND`` of the user's that names another backend. A Python
caller of ``tfcnn.train.fit.train`` sets ``KERAS_BACKEND`` itself;
``check_active`` refuses a recipe whose backend is not the one Keras runs.

What differs by backend inside the fit loop is chosen with ``is_tensorflow``
(``tfcnn.train.strategy``, ``tfcnn.train.fit``, ``tfcnn.summaries``): the
same tf.data pipeline feeds ``model.fit`` on both; under JAX the devices
are used through ``keras.distribution.DataParallel`` instead of a
``tf.distribute`` strategy, and every step is compiled by XLA (``jax.jit``).

Nothing here imports Keras or TensorFlow.
"""

import os
import sys

from tfcnn.errors import RecipeError

ENV = "KERAS_BACKEND"


def select(recipe, environ=None):
    """Makes Keras load the recipe's backend; call it before Keras loads.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        environ: the environment to set (a dict). Defaults to
            ``os.environ``.

    Raises:
        RecipeError: ``KERAS_BACKEND`` names another backend than
            ``train.backend``, or Keras was already imported with another
            backend.
    """
    environ = os.environ if environ is None else environ
    wanted = recipe.train.backend.value
    given = environ.get(ENV)
    if given is not None and given != wanted:
        raise RecipeError(
            f"the environment's {ENV}={given} and the recipe's "
            f"train.backend = \"{wanted}\" disagree; unset {ENV} or set "
            f"--set train.backend={given}. Received: {ENV}={given!r}")
    loaded = _loaded_backend()
    if loaded is not None and loaded != wanted:
        raise RecipeError(
            f"train.backend = \"{wanted}\" but Keras was already imported "
            f"with the {loaded} backend in this process (Keras picks its "
            f"backend once, at import; set {ENV}={wanted} before importing "
            f"it). Received: train.backend={wanted!r}")
    environ[ENV] = wanted


def check_active(recipe):
    """Raises ``RecipeError`` unless Keras runs ``train.backend``.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
    """
    import keras

    wanted = recipe.train.backend.value
    active = keras.backend.backend()
    if active != wanted:
        raise RecipeError(
            f"train.backend = \"{wanted}\" but Keras runs on {active} in "
            f"this process (Keras picks its backend once, at import: set "
            f"{ENV}={wanted} before importing it, as `tfcnn train` does). "
            f"Received: train.backend={wanted!r}")


def is_tensorflow():
    """Whether Keras runs on TensorFlow (imports Keras)."""
    import keras

    return keras.backend.backend() == "tensorflow"


def _loaded_backend():
    keras = sys.modules.get("keras")
    backend = getattr(keras, "backend", None)
    return None if backend is None else backend.backend()
