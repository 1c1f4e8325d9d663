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
