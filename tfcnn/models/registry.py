"""Model registry: build any model by name.

Every builder shares the signature ``builder(input_shape, num_classes,
include_top=True, pooling=None, classifier_activation="softmax", name=...,
**options)`` so one parametrized test covers them all.
"""

import inspect

from tfcnn.errors import ModelOptionError
from tfcnn.errors import UnknownModelError

_REGISTRY = {}


def register_model(name):
    """Decorator that registers a model builder under ``name``.

    Raises:
        KeyError: ``name`` is already registered.
    """

    def decorator(builder):
        if name in _REGISTRY:
            raise KeyError(f"model {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return decorator


def register_variant(name, base, *, fixed=None, defaults=None):
    """Registers ``base`` with some arguments fixed, as the builder ``name``.

    Variants of a family come from one generic builder plus a spec (STYLE.md
    3): ``register_variant("vgg16", vgg, fixed={"depth": 16})`` makes a
    function ``vgg16(input_shape=..., ...)`` whose signature is ``vgg``'s
    without ``depth`` and whose ``name`` defaults to "vgg16", so the
    registry's option check and ``help()`` see the real arguments.

    Args:
        name: str, the registered name (and the default model name).
        base: the family's builder; every argument passable by keyword.
        fixed: dict, arguments the variant sets and does not expose.
        defaults: dict, arguments the variant exposes with other defaults.

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
    settings = ", ".join(f"{k}={v!r}" for k, v in {**fixed, **defaults}.items())
    builder.__doc__ = (f"Builds {name}: ``{base.__name__}({settings})``.\n\n"
                       f"    See ``{base.__name__}`` for the arguments.\n")
    return register_model(name)(builder)


def list_models():
    """Returns the registered model names, sorted."""
    return sorted(_REGISTRY)


def get_builder(name):
    """Returns the builder registered as ``name``.

    Raises:
        UnknownModelError: (a KeyError) unknown name; the message lists the
            known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: "
            f"{', '.join(list_models())}") from None


def build(name, input_shape=None, num_classes=None, **options):
    """Builds the model registered as ``name``.

    Args:
        name: str, a name from ``list_models()``.
        input_shape: tuple ``(H, W, C)``; None uses the builder's default.
        num_classes: int; None uses the builder's default.
        **options: builder-specific keyword arguments.

    Raises:
        UnknownModelError: (a KeyError) unknown model name.
        ModelOptionError: (a TypeError) an option the builder does not take (named in the message).
    """
    builder = get_builder(name)
    params = inspect.signature(builder).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ModelOptionError(
            f"model {name!r} takes no option {unknown[0]!r}; its options: "
            f"{', '.join(p for p in params if p not in ('input_shape', 'num_classes'))}")
    kwargs = dict(options)
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return builder(**kwargs)
