"""Model registry: build any model by name.

Every builder shares the signature ``builder(input_shape, num_classes,
include_top=True, pooling=None, classifier_activation="softmax", name=...,
**options)`` so one parametrized test covers them all.
"""

import difflib
import inspect

from tfcnn.errors import ModelOptionError
from tfcnn.errors import ModelValueError
from tfcnn.errors import UnknownModelError

_REGISTRY = {}
# Registered name -> the task its outputs answer (``tfcnn.tasks``' names, as
# manifests record them): scores per image, or per pixel.
_TASKS = {}
# Name prefix -> why no model of that family is registered, for families a
# user may expect (``register_absent``).
_ABSENT = {}
CLASSIFICATION = "classification"
SEGMENTATION = "segmentation"
# Arguments of ``build`` itself, left out of the option list in errors.
_BUILD_ARGUMENTS = ("input_shape", "num_classes")


def register_model(name, *, task=CLASSIFICATION):
    """Decorator that registers a model builder under ``name``.

    Args:
        name: str, the registered name.
        task: str, the task the model's output answers: "classification"
            (class scores per image) or "segmentation" (per pixel).
            Defaults to "classification".

    Raises:
        KeyError: ``name`` is already registered.
    """

    def decorator(builder):
        if name in _REGISTRY:
            raise KeyError(f"model {name!r} is already registered")
        _REGISTRY[name] = builder
        _TASKS[name] = task
        return builder

    return decorator


def register_variant(name, base, *, fixed=None, defaults=None,
                     task=CLASSIFICATION):
    """Registers ``base`` with some arguments fixed, as the builder ``name``.

    Variants of a family come from one generic builder plus a spec, as in
    ``keras.applications``: ``register_variant("vgg16", vgg,
    fixed={"depth": 16})`` makes a function ``vgg16(input_shape=...,
    ...)`` whose signature is ``vgg``'s without ``depth`` and whose
    ``name`` defaults to "vgg16", so the registry's option check and
    ``help()`` see the real arguments.

    Args:
        name: str, the registered name (and the default model name).
        base: the family's builder; every argument passable by keyword.
        fixed: dict, arguments the variant sets and does not expose.
        defaults: dict, arguments the variant exposes with other defaults.
        task: str, as for ``register_model``. Defaults to
            "classification".

    Returns:
        the registered builder.

    Raises:
        KeyError: ``name`` is already registered.
    """
    fixed = dict(fixed or {})
    defaults = {"name": name, **(defaults or {})}
    signature = inspect.signature(base)
    signature = signature.replace(parameters=[
        parameter.replace(default=defaults.get(parameter.name,
                                               parameter.default))
        for parameter in signature.parameters.values()
        if parameter.name not in fixed])

    def builder(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return base(**fixed, **bound.arguments)

    builder.__signature__ = signature
    builder.__name__ = builder.__qualname__ = name
    builder.__module__ = base.__module__
    settings = ", ".join(f"{key}={value!r}"
                         for key, value in {**fixed, **defaults}.items())
    builder.__doc__ = (f"Builds {name}: ``{base.__name__}({settings})``.\n\n"
                       f"    See ``{base.__name__}`` for the arguments.\n")
    return register_model(name, task=task)(builder)


def register_absent(prefix, reason):
    """Records why no model whose name starts with ``prefix`` exists.

    An unknown name with that prefix (any case) is then refused with the
    reason instead of the list of every registered name.

    Args:
        prefix: str, the family's name prefix, lower case ("regnet").
        reason: str, one sentence, without a final full stop.
    """
    _ABSENT[prefix] = reason


def list_models():
    """Returns the registered model names, sorted."""
    return sorted(_REGISTRY)


def model_task(name):
    """The task the model registered as ``name`` answers.

    Returns:
        str, "classification" or "segmentation".

    Raises:
        UnknownModelError: unknown name.
    """
    get_builder(name)
    return _TASKS[name]


def get_builder(name):
    """Returns the builder registered as ``name``.

    Raises:
        UnknownModelError: (a KeyError) unknown name; the message lists the
            known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        for prefix, reason in _ABSENT.items():
            if str(name).lower().startswith(prefix):
                raise UnknownModelError(
                    f"unknown model {name!r}: {reason}; `tfcnn models` "
                    "lists the models there are") from None
        raise UnknownModelError(
            f"unknown model {name!r}; known models: "
            f"{', '.join(list_models())}") from None


def build(name, /, input_shape=None, num_classes=None, **options):
    """Builds the model registered as ``name``.

    Args:
        name: str, a name from ``list_models()`` (positional only, so that
            ``name=...`` among the options names the Keras model).
        input_shape: tuple ``(H, W, C)``; None uses the builder's default.
        num_classes: int; None uses the builder's default.
        **options: builder-specific keyword arguments.

    Raises:
        UnknownModelError: (a KeyError) unknown model name.
        ModelOptionError: (a TypeError) an option the builder does not
            take (named in the message).
        ModelValueError: (a ValueError) the builder rejects an option's
            value or the input shape (named in the message).
    """
    builder = get_builder(name)
    params = inspect.signature(builder).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        known = [p for p in params if p not in _BUILD_ARGUMENTS]
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelOptionError(
            f"model {name!r} takes no option {unknown[0]!r}{hint}; its "
            f"options: {', '.join(known)}")
    kwargs = dict(options)
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    try:
        return builder(**kwargs)
    except ValueError as error:
        # The builders validate their arguments with ValueErrors; name the
        # model, so that the command line can show them as one line.
        raise ModelValueError(f"model {name!r}: {error}") from error


def describe(name, /, input_shape=None, num_classes=None, **options):
    """Builds ``name`` without initializing its weights and describes it.

    The model is built inside a ``keras.StatelessScope`` that does not
    initialize its variables on exit: the shapes exist, the values are
    never computed or allocated, and the deferred variables are dropped
    afterwards. Describing VGG-16 therefore costs the graph construction
    alone (a fraction of a second), not 138 million random numbers.

    Args:
        name: str, a name from ``list_models()``.
        input_shape: tuple, as for ``build``; None: the builder's default.
        num_classes: int, as for ``build``; None: the builder's default.
        **options: builder-specific keyword arguments.

    Returns:
        dict with ``name``, ``parameters`` (all weights, as
        ``count_params()``), ``trainable`` (trainable weights only) and
        ``input_shape`` (without the batch axis).

    Raises:
        UnknownModelError: unknown model name.
        ModelOptionError: an option the builder does not take.
    """
    import keras

    # reason: Keras has no public way to drop variables whose deferred
    # initialization is no longer wanted: a StatelessScope that does not
    # initialize them leaves them in the global list that the next
    # StatelessScope to exit allocates (keras/src/backend/common/
    # stateless_scope.py). keras-team/keras-hub#1341 asks for the same
    # building without allocating; no keras-team/keras issue tracks
    # dropping them. tests/train/test_keras_patches.py fails once Keras
    # drops them itself.
    from keras.src.backend.common import global_state

    pending = "uninitialized_variables"
    before = list(global_state.get_global_attribute(pending) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = build(name, input_shape=input_shape,
                          num_classes=num_classes, **options)
            return {"name": name, "parameters": model.count_params(),
                    "trainable": sum(_size(weight)
                                     for weight in model.trainable_weights),
                    "input_shape": tuple(model.input_shape[1:])}
    finally:
        global_state.set_global_attribute(pending, before)


def _size(weight):
    size = 1
    for dim in weight.shape:
        size *= dim
    return size
