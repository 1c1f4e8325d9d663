"""tfcnn: a TensorFlow/Keras toolkit for convolutional networks on images.

Importing ``tfcnn`` is cheap: TensorFlow and Keras are imported by the
subpackages that need them (``tfcnn.layers``, ``tfcnn.models``,
``tfcnn.data``, ...), not here, so ingest's worker processes and the
serving path stay light.

Loading a ``.keras`` file needs every class it names registered with
Keras: a trained run's ``model.keras`` holds tfcnn's preprocessing layers
(``RandomOrCentreCrop``, ``MeanSubtraction``, ...) besides its custom
layers. ``import tfcnn`` is enough for that: the modules that register such
classes (``SERIALIZABLE_MODULES``) are imported as soon as Keras itself is,
or right away when Keras already is. So

>>> import keras
>>> import tfcnn
>>> model = keras.models.load_model("runs/quickstart/model.keras")

works in either import order. ``register_serializables()`` does it
explicitly.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# Every module that registers a class a tfcnn .keras file can name: custom
# layers and initializers, augmentation and preprocessing layers, the
# losses, metrics and optimizers of a compiled model, the segmentation
# task's loss and metrics.
SERIALIZABLE_MODULES = (
    "tfcnn.layers",
    "tfcnn.augment",
    "tfcnn.losses",
    "tfcnn.metrics",
    "tfcnn.train.optimizers",
    "tfcnn.tasks.semantic_segmentation",
)


def register_serializables():
    """Imports ``SERIALIZABLE_MODULES``, registering every tfcnn class that
    a ``.keras`` file can name with Keras (this imports Keras)."""
    for name in SERIALIZABLE_MODULES:
        importlib.import_module(name)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs ``register_serializables`` once Keras and TensorFlow are
    imported.

    First on ``sys.meta_path``, it answers only for ``keras`` and
    ``tensorflow``: it takes the module's own spec from the other finders
    and wraps its loader, so that the registration runs right after the
    module's ``__init__`` finishes, unless the other of the two is still
    being imported (TensorFlow imports Keras and Keras TensorFlow; tfcnn's
    modules need both whole), in which case that one's end runs it.
    """

    _WATCHED = ("keras", "tensorflow")

    def __init__(self):
        self._finding = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self._WATCHED or fullname in self._finding:
            return None
        self._finding.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding.discard(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister(importlib.abc.Loader):
    """A module's own loader, then ``register_serializables`` when
    neither Keras nor TensorFlow is still initializing."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        if not any(_initializing(name) for name in
                   _RegisterAfterImport._WATCHED
                   if name != module.__name__):
            stop_registering_on_import()
            register_serializables()


def _initializing(name):
    """Whether module ``name`` is being imported right now (importlib marks
    its spec while its code runs)."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def stop_registering_on_import():
    """Stops registering on import: ``tfcnn.serve`` runs SavedModels and
    never reads a ``.keras`` file, so it keeps tfcnn's model half out."""
    sys.meta_path[:] = [finder for finder in sys.meta_path
                        if not isinstance(finder, _RegisterAfterImport)]


if "keras" in sys.modules and "tensorflow" in sys.modules:
    register_serializables()
else:
    sys.meta_path.insert(0, _RegisterAfterImport())
