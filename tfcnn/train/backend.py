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

    Sets ``KERAS_BACKEND`` when Keras is not imported yet (a process that
    already runs the recipe's backend is left as it is).

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
        environ: the environment to set (a dict). Defaults to
            ``os.environ``.

    Raises:
        RecipeError: ``KERAS_BACKEND`` names another backend than
            ``train.backend``, Keras was already imported with another
            backend, or a setting the backend lacks (``check_supported``).
    """
    environ = os.environ if environ is None else environ
    check_supported(recipe.train)
    wanted = recipe.train.backend.value
    given = environ.get(ENV)
    if given is not None and given != wanted:
        raise RecipeError(
            f"the environment's {ENV}={given} and the recipe's "
            f"train.backend = \"{wanted}\" disagree; unset {ENV} or set "
            f"--set train.backend={given}. Received: {ENV}={given!r}")
    loaded = _loaded_backend()
    if loaded is None:
        environ[ENV] = wanted
    elif loaded != wanted:
        raise RecipeError(
            f"train.backend = \"{wanted}\" but Keras was already imported "
            f"with the {loaded} backend in this process (Keras picks its "
            f"backend once, at import; set {ENV}={wanted} before importing "
            f"it). Received: train.backend={wanted!r}")


def check_supported(config):
    """Raises ``RecipeError`` for a setting that ``train.backend`` lacks.

    Under JAX: ``train.strategy = "multi_worker"`` (tf.distribute's
    alone), and freezing layers (``train.trainable`` other than "all",
    ``train.head_epochs``): Keras' JAX optimizer updates exactly the
    variables it was built for (``stateless_apply``), so the set that
    trains cannot change as ``tfcnn.train.freeze`` changes it.

    Args:
        config: ``tfcnn.recipe.TrainConfig``.
    """
    from tfcnn.recipe import Backend
    from tfcnn.recipe import Strategy

    if config.backend is Backend.TENSORFLOW:
        return
    name = config.backend.value
    if config.strategy is Strategy.MULTI_WORKER:
        raise RecipeError(
            "train.strategy = \"multi_worker\" is TensorFlow's "
            "(tf.distribute's MultiWorkerMirroredStrategy); under "
            f"train.backend = \"{name}\" use \"auto\" or "
            "\"mirrored\" (keras.distribution.DataParallel over this "
            "machine's devices). Received: train.strategy='multi_worker'")
    if config.trainable != "all" or config.head_epochs:
        raise RecipeError(
            "train.trainable and train.head_epochs freeze layers, which "
            f"train.backend = \"{name}\" does not do (Keras' JAX "
            "optimizer updates exactly the variables it was built for); "
            "train them under train.backend = \"tensorflow\". Received: "
            f"trainable={config.trainable!r}, "
            f"head_epochs={config.head_epochs}")


def check_active(recipe):
    """Raises ``RecipeError`` unless Keras runs ``train.backend`` (with
    settings it has: ``check_supported``).

    Args:
        recipe: ``tfcnn.recipe.Recipe``.
    """
    import keras

    check_supported(recipe.train)
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


def in_tensorflow_process(function, *args, **kwargs):
    """``function(*args, **kwargs)`` in a fresh process where Keras runs
    on TensorFlow; its result, or its exception, comes back.

    A SavedModel is traced by TensorFlow, so exporting from a process
    whose Keras runs on JAX reloads the backend-independent ``.keras``
    file there (``tfcnn.stages.export``).

    Args:
        function: a module-level callable (it is pickled).
        *args, **kwargs: its arguments (pickled).

    Returns:
        what ``function`` returns.
    """
    import multiprocessing
    from concurrent import futures

    previous = os.environ.get(ENV)
    os.environ[ENV] = "tensorflow"  # what the spawned process inherits
    try:
        context = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            return pool.submit(function, *args, **kwargs).result()
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous


def _loaded_backend():
    keras = sys.modules.get("keras")
    backend = getattr(keras, "backend", None)
    return None if backend is None else backend.backend()
