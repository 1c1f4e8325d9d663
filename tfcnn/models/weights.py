"""Starting a network from trained weights, matched by layer name and shape.

``load_weights(network, source)`` copies every weight tensor of ``source``
whose layer name and shape match one of ``network``'s into it and leaves
the rest at their fresh initialization (a new classifier for another class
count, say), then reports both. ``source`` is one of:

* a tfcnn run directory (its ``model.keras``) or any ``.keras`` file,
  nested models included (a training model holds its network as a layer);
* a ``.weights.h5`` file (``model.save_weights``), read with h5py: Keras
  names its groups after the layer classes and keeps each layer's name in
  the ``vars`` group's ``name`` attribute;
* a keras.applications-style ``.h5`` file (the legacy format of the files
  keras.applications downloads, or ``model.save("x.h5")``), whose
  ``weight_names`` attributes name every tensor;
* ``"imagenet"``: keras.applications' own ImageNet file for the models it
  also has (``IMAGENET_MODELS``), fetched by Keras (network needed once;
  Keras caches it in ``~/.keras/models``).

tfcnn's layer names follow keras.applications', with two differences of
convention that the matching bridges: keras.applications names a VGG
convolution after its unit (``block1_conv1``, the ReLU inside) where
tfcnn's ``conv_norm_act`` appends ``_conv``, and it calls the classifier
``predictions`` where tfcnn's is ``logits`` (``predictions`` is tfcnn's
float32 softmax). keras.applications' ResNets give every convolution a
bias in front of its batch norm; tfcnn's have none (the norm cancels it),
so the bias is folded into the norm's moving mean:
``BN(conv(x) + b)`` with mean ``m`` equals ``BN(conv(x))`` with mean
``m - b``. With these, a keras.applications model and the tfcnn model
carrying its weights compute the same function (the test checks 1e-5 on
the probabilities), each after its own ``preprocess_input``: keras.applications'
convention for each model is ``PREPROCESSING``, which the mean-subtraction
layer (``tfcnn.augment.mean``) implements.
"""

import dataclasses
import functools
import re
from pathlib import Path

import numpy as np

from tfcnn.errors import RecipeError
from tfcnn.errors import WeightsError
from tfcnn.preprocessing_modes import MeanMode

IMAGENET = "imagenet"

# Models whose ImageNet weights keras.applications has: the builder's name
# in keras.applications and its preprocess_input mode.
IMAGENET_MODELS = {
    "vgg16": ("VGG16", "caffe"),
    "vgg19": ("VGG19", "caffe"),
    "resnet50": ("ResNet50", "caffe"),
    "resnet101": ("ResNet101", "caffe"),
    "resnet152": ("ResNet152", "caffe"),
}

_LISTED = 8  # names listed in a report line before "... and N more"
# A load that fills less than this share of the tensors outside the new
# head starts from what is in effect a random network: another
# architecture's weights, refused unless ``model.weights_partial``.
MIN_MATCHED = 0.5


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What ``load_weights`` copied and what it left fresh.

    Attributes:
        source: str, the weights' origin as given.
        loaded: tuple of the network's weight names (``layer/weight``) that
            were copied.
        new: tuple of the network's weight names left at their fresh
            initialization (no tensor of that name and shape).
        unused: tuple of the source's weight names that went nowhere.
        head: tuple of the names of the layers that were to start fresh
            (after ``until``, or a classifier of other classes).
    """

    source: str
    loaded: tuple
    new: tuple
    unused: tuple
    head: tuple = ()

    @property
    def fresh_layers(self):
        """Names of the layers that received no weights or only some of
        them, in the network's order: what a head stage must train."""
        names = []
        for key in self.new:
            layer = key.rpartition("/")[0]
            if layer not in names:
                names.append(layer)
        return tuple(names)

    @property
    def total(self):
        return len(self.loaded) + len(self.new)

    def message(self):
        """One line: ``loaded 106 of 108 weight tensors from ...; new: ...``."""
        line = (f"loaded {len(self.loaded)} of {self.total} weight tensors "
                f"from {self.source}")
        if self.new:
            line += f"; new: {_listing(self.new)}"
        if self.unused:
            line += f"; unused from the file: {_listing(self.unused)}"
        return line


def preprocessing_mode(model_name):
    """keras.applications' ``preprocess_input`` mode for a model, or None.

    tfcnn's VGG and ResNets carry keras.applications' weights after
    Caffe's convention; the keras.applications networks themselves
    (``tfcnn.models.applications``) record their family's mode.
    """
    from tfcnn.models import applications

    entry = IMAGENET_MODELS.get(model_name)
    return entry[1] if entry else applications.preprocessing_mode(model_name)


def resolve_mean(mode, model=None):
    """The ``MeanMode`` that ``"auto"`` stands for.

    keras.applications' ``preprocess_input`` mode of the model when it
    starts from ``model.weights = "imagenet"`` (its weights expect those
    inputs) or is a keras.applications network whatever its weights
    (``tfcnn.models.applications``: several normalize inside and expect
    raw pixels), else AlexNet's mean image.

    Args:
        mode: ``tfcnn.recipe.MeanMode``.
        model: ``tfcnn.recipe.ModelConfig`` or None.

    Returns:
        ``MeanMode``, never ``AUTO``.
    """
    from tfcnn.models import applications

    if mode is not MeanMode.AUTO:
        return mode
    if model is not None and (model.weights == IMAGENET
                              or model.name in applications.APPLICATIONS):
        convention = preprocessing_mode(model.name)
        if convention is not None:
            return MeanMode(convention)
    return MeanMode.IMAGE


def load_weights(network, source, *, model_name=None, class_names=None,
                 until=None, partial=False):
    """Copies matching weights from ``source`` into ``network``.

    Call it under the strategy's scope: assigning a mirrored variable
    outside a replica context writes every replica's copy.

    Args:
        network: a built functional ``keras.Model`` (nested models are
            searched too).
        source: str or Path, a run directory, a ``.keras``, ``.weights.h5``
            or ``.h5`` file, or ``"imagenet"``.
        model_name: str, the registered model name; needed for
            ``"imagenet"``. Defaults to None.
        class_names: list of str or None, the classes the network will
            learn. A tfcnn run records its own (``classes.json``); when
            they differ, its classifier (the network's last layer with
            weights) is not loaded even if the shapes match (5 other
            classes are not these 5). Defaults to None (not compared).
        until: str or None, the name of the last layer to load; the
            layers after it keep their fresh initialization (a new top on
            a pretrained backbone). Defaults to None (every layer).
        partial: bool, accept a source that fills less than
            ``MIN_MATCHED`` of the network's tensors outside its new head
            (the layers after ``until``, or else its classifier): weights
            of another architecture, taken on purpose
            (``model.weights_partial``). Defaults to False.

    Returns:
        ``LoadReport``.

    Raises:
        WeightsError: a missing or unreadable file, a file that holds no
            weights, or one that matches none of the network's tensors,
            or (unless ``partial``) less than ``MIN_MATCHED`` of those
            outside the new head.
        RecipeError: ``"imagenet"`` for a model keras.applications lacks,
            or ``until`` names no layer of ``network``.
    """
    source = str(source)
    targets = _target_layers(network)
    fresh = _layers_after(network, until, targets)
    renamed = canonical_names(targets)
    targets = {renamed[name]: value for name, value in targets.items()}
    fresh = {renamed.get(name, name) for name in fresh}
    tensors = read_weights(source, model_name=model_name,
                           input_shape=tuple(network.input_shape[1:]))
    renamed = canonical_names(tensors)
    tensors = {renamed[name]: value for name, value in tensors.items()}
    tensors = _fold_conv_biases(tensors, targets)
    run_classes = _run_classes(source)
    head = list(targets)[-1] if targets else None
    other_classes = (class_names is not None and run_classes is not None
                     and list(run_classes) != list(class_names))
    loaded, new, assignments = [], [], []
    matched = {}  # source layer -> its weights by name, and the names used
    for layer_name, variables in targets.items():
        found = _source_layer(layer_name, tensors)
        if (other_classes and layer_name == head) or layer_name in fresh:
            found = None
        values = {}
        if found is not None:
            values = _named(tensors[found], variables)
            matched[found] = (values, {"_folded_bias"})
        for weight_name, variable in variables.items():
            value = values.get(weight_name)
            key = f"{layer_name}/{weight_name}"
            if value is None or tuple(value.shape) != tuple(variable.shape):
                new.append(key)
                continue
            assignments.append((variable, value))
            loaded.append(key)
            matched[found][1].add(weight_name)
    if not loaded:
        raise WeightsError(
            f"model.weights: no tensor of {source} matches a layer of "
            f"{network.name} by name and shape (its first layers: "
            f"{', '.join(list(targets)[:3])}; the file's: "
            f"{', '.join(list(tensors)[:3]) or 'none'}). Received: "
            f"{source}")
    head_layers = fresh or ({head} if head else set())
    _check_enough(source, network, targets, loaded, head_layers, partial)
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    for layer in _flat_layers(network):
        # Keras' Normalization computes from its variables once, in
        # finalize_state, as its own load_own_variables does after loading.
        if hasattr(layer, "finalize_state") and layer.built:
            layer.finalize_state()
    unused = []
    for layer, weights in tensors.items():
        names, used = matched.get(layer, (weights, set()))
        unused += [f"{layer}/{w}" for w in (names or weights)
                   if w not in used]
    return LoadReport(source, tuple(loaded), tuple(new), tuple(unused),
                      tuple(name for name in targets if name in head_layers))


def _check_enough(source, network, targets, loaded, head_layers, partial):
    """Refuses a load that fills too little outside the head."""
    body = [f"{layer}/{weight}" for layer, variables in targets.items()
            if layer not in head_layers for weight in variables]
    taken = set(loaded)
    matched = sum(key in taken for key in body)
    if partial or not body or matched >= MIN_MATCHED * len(body):
        return
    missing = []
    for key in body:
        layer = key.rpartition("/")[0]
        if key not in taken and layer not in missing:
            missing.append(layer)
    raise WeightsError(
        f"model.weights: {source} fills {matched} of the {len(body)} weight "
        f"tensors of {network.name} outside its new head (less than "
        f"{MIN_MATCHED:.0%}: weights of another architecture); no tensor "
        f"of that name and shape for {_listing(missing[:3])}. Set "
        f"model.weights_partial = true to start from them anyway. "
        f"Received: model.weights={source!r}")


def _layers_after(network, until, targets):
    """The names of the layers after ``until`` (none when it is None)."""
    if not until:
        return set()
    names = [layer.name for layer in _flat_layers(network)]
    if until not in names:
        raise RecipeError(
            f"model.weights_until: {network.name} has no layer {until!r} "
            f"(its layers with weights: {_listing(list(targets))}). "
            f"Received: {until!r}")
    return set(names[names.index(until) + 1:])


def _run_classes(source):
    """The class names of the tfcnn run ``source`` belongs to, or None."""
    import json

    from tfcnn.run_folder import RunFolder

    path = Path(source)
    for folder in (path, path.parent, path.parent.parent):
        try:
            names = json.loads(RunFolder(folder).classes.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(names, dict) and "class_names" in names:
            return names["class_names"]
    return None


def read_weights(source, *, model_name=None, input_shape=None):
    """Reads a weights source into ``{layer name: {weight name: array}}``.

    Weights of ``.weights.h5`` files have no names, only their order;
    their keys are ``"0"``, ``"1"``, ... and ``load_weights`` names them
    after the target layer's own order.

    Args:
        source: str, as for ``load_weights``.
        model_name: str, the registered model name (for ``"imagenet"``).
        input_shape: tuple ``(H, W, C)`` of the network (for
            ``"imagenet"``: keras.applications' classifier needs 224x224).

    Returns:
        dict of dicts of NumPy arrays, layers in the file's order.

    Raises:
        WeightsError, RecipeError: as ``load_weights``.
    """
    if source == IMAGENET:
        return _imagenet_weights(model_name, input_shape)
    path = Path(source)
    if path.is_dir():
        from tfcnn.run_folder import RunFolder

        folder = RunFolder(path)
        if not folder.model.is_file():
            raise WeightsError(
                f"model.weights: {path} is a directory without "
                f"{folder.MODEL} (not a finished tfcnn run). Received: "
                f"{path}")
        path = folder.model
    if not path.is_file():
        raise WeightsError(
            f"model.weights: file not found: {path}. Received: {source}")
    name = path.name.lower()
    if name.endswith(".keras"):
        tensors = _keras_file_weights(path)
    elif name.endswith(".h5") or name.endswith(".hdf5"):
        tensors = _h5_weights(path)
    else:
        raise WeightsError(
            f"model.weights must be a tfcnn run directory, a .keras, "
            f".weights.h5 or .h5 file, or \"imagenet\". Received: {source}")
    if not any(tensors.values()):
        raise WeightsError(
            f"model.weights: {path} holds no weights. Received: {source}")
    return tensors


def _keras_file_weights(path):
    from tfcnn.models import saving

    try:
        model = saving.load_model(path)
    except Exception as error:  # noqa: BLE001 - any failure: not a model
        raise WeightsError(
            f"model.weights: {path} is not a Keras model file "
            f"({type(error).__name__}: {_first_line(error)})") from None
    # The preprocessing around the network (the dataset's mean) is not
    # the network's.
    tensors = {}
    for layer in _flat_layers(network_of(model)):
        if layer.weights:
            tensors[layer.name] = {
                v.name: np.asarray(v.numpy()) for v in layer.weights}
    return tensors


def _h5_weights(path):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" in root.attrs:
                return _legacy_h5_weights(root, path)
            return _keras3_h5_weights(f)
    except OSError as error:
        raise WeightsError(
            f"model.weights: {path} is not an HDF5 weights file "
            f"({_first_line(error)})") from None


def _legacy_h5_weights(root, path):
    """The keras.applications layout: ``weight_names`` name each tensor.

    Raises:
        WeightsError: ``layer_names`` or a ``weight_names`` is not a list,
            or names what the file does not hold.
    """
    import h5py

    tensors = {}
    for layer_name in _name_list(root, "layer_names", path):
        group = root.get(layer_name)
        if not isinstance(group, h5py.Group):
            raise WeightsError(
                f"model.weights: {path} is malformed: its layer_names lists "
                f"{layer_name!r}, which is no group in the file")
        weights = {}
        for weight_name in _name_list(group, "weight_names", path):
            # "block1_conv1/kernel:0" (Keras 2) or "block1_conv1/kernel".
            short = weight_name.rsplit("/", 1)[-1].split(":")[0]
            tensor = group.get(weight_name)
            if not isinstance(tensor, h5py.Dataset):
                raise WeightsError(
                    f"model.weights: {path} is malformed: layer "
                    f"{layer_name!r} lists weight {weight_name!r}, which is "
                    "no dataset in the file")
            weights[short] = np.asarray(tensor)
        if weights:
            tensors[layer_name] = weights
    return tensors


def _name_list(node, key, path):
    """The names of the list attribute ``key`` of an HDF5 group, as str."""
    names = node.attrs.get(key, [])
    if np.ndim(names) != 1:
        raise WeightsError(
            f"model.weights: {path} is malformed: {node.name} attribute "
            f"{key} must be a list of names. Received: {names!r}")
    return [_text(name) for name in names]


def _keras3_h5_weights(f):
    """``model.save_weights`` files: ``.../vars/<i>`` under each layer."""
    tensors, depths = {}, {}

    def visit(name, obj):
        parts = name.split("/")
        if parts[0] == "optimizer" or parts[-1] != "vars" or not len(obj):
            return
        layer_name = _text(obj.attrs.get("name", parts[-2]))
        depths[layer_name] = parts.count("layers")
        tensors[layer_name] = {
            key: np.asarray(obj[key]) for key in sorted(obj, key=int)}

    f.visititems(visit)
    # A training model's network is nested ("layers/<net>/layers/<layer>");
    # its preprocessing layers sit at the top and are left out.
    nested = {name for name, depth in depths.items() if depth > 1}
    if nested:
        tensors = {k: v for k, v in tensors.items() if k in nested}
    return tensors


def _imagenet_weights(model_name, input_shape):
    import keras

    from tfcnn.models import applications

    if model_name in IMAGENET_MODELS:
        constructor, size = IMAGENET_MODELS[model_name][0], 224
    elif model_name in applications.APPLICATIONS:
        application = applications.APPLICATIONS[model_name]
        constructor, size = application.constructor, application.size
    else:
        raise RecipeError(
            f"model.weights = \"imagenet\" is available for "
            f"{', '.join(IMAGENET_MODELS)} and the keras.applications "
            f"networks ({', '.join(applications.APPLICATIONS)}). "
            f"Received: model.name={model_name!r}")
    builder = getattr(keras.applications, constructor)
    # keras.applications' classifier exists for the size its weights were
    # trained at only; at other sizes the convolutional part alone is
    # loaded.
    include_top = tuple(input_shape or ()) == (size, size, 3)
    kwargs = {} if include_top else {"input_shape": tuple(input_shape)}
    try:
        model = builder(weights=IMAGENET, include_top=include_top, **kwargs)
    except Exception as error:  # noqa: BLE001 - a download or file error
        raise WeightsError(
            f"model.weights: keras.applications could not provide the "
            f"ImageNet weights of {model_name} ({type(error).__name__}: "
            f"{_first_line(error)}); on a machine without network, pass "
            "the downloaded .h5 file instead. Received: imagenet") from None
    return fold_rescaling(model)


def fold_rescaling(model):
    """A model's weights by layer, a rescaling after a normalization folded.

    keras.applications' EfficientNet (B0-B7) with ImageNet weights puts
    a ``Rescaling`` by ``1 / sqrt(std)`` after its input ``Normalization``
    (keras-team/keras, tensorflow/tensorflow#49930), a layer that the same
    network built without weights lacks. ``(x - m) / sqrt(v) * s`` equals
    ``(x - m) / sqrt(v / s^2)``, so the scale goes into the variance and the
    network that tfcnn builds computes the same function.

    Args:
        model: a ``keras.Model``.

    Returns:
        ``{layer name: {weight name: array}}``.
    """
    import keras

    tensors, previous = {}, None
    for layer in model.layers:
        if layer.weights:
            tensors[layer.name] = {v.name: np.asarray(v.numpy())
                                   for v in layer.weights}
        elif (isinstance(layer, keras.layers.Rescaling)
              and isinstance(previous, keras.layers.Normalization)
              and "variance" in tensors.get(previous.name, {})):
            scale = np.asarray(layer.scale, "float32")
            weights = tensors[previous.name]
            weights["variance"] = weights["variance"] / scale ** 2
        previous = layer
    return tensors


def canonical_names(layers):
    """Names of Keras' counters made independent of the process.

    A layer built without a name is named after its class and a counter
    of the process (``conv2d``, ``conv2d_7``), so the same network built
    twice, or in another process, names it differently; keras.applications
    leaves some unnamed (Xception's and Inception's convolutions,
    EfficientNet's input normalization). Within one model, such names are
    renumbered by rank (``conv2d``, ``conv2d_1``, ... in counter order), so
    that the source's and the network's layers match again. Other names
    are kept.

    Args:
        layers: iterable of layer names of one model.

    Returns:
        dict from each name to its canonical name.
    """
    groups = {}
    for name in layers:
        match = _COUNTER_NAME.fullmatch(name)
        if match and match.group(1) in _keras_layer_names():
            groups.setdefault(match.group(1), []).append(
                (int(match.group(2) or 0), name))
    renamed = {name: name for name in layers}
    for base, names in groups.items():
        for rank, (_, name) in enumerate(sorted(names)):
            renamed[name] = f"{base}_{rank}" if rank else base
    return renamed


_COUNTER_NAME = re.compile(r"(.+?)(?:_(\d+))?")


@functools.cache
def _keras_layer_names():
    """The default names of Keras' layer classes (Keras' snake case)."""
    import keras

    names = set()
    for value in vars(keras.layers).values():
        if isinstance(value, type) and issubclass(value,
                                                  keras.layers.Layer):
            name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", value.__name__)
            names.add(re.sub("([a-z])([A-Z])", r"\1_\2", name).lower())
    return names


def network_of(model):
    """The network inside a tfcnn model: its innermost nested model.

    A classification TRAINING MODEL (and its saved ``model.keras``) holds
    the network as its one nested ``keras.Model``, between the
    preprocessing layers and the softmax; segmentation's holds the
    inference model (mean, padding, crop and softmax around the network)
    that holds it. A network without a nested model is its own.

    Args:
        model: a ``keras.Model``.

    Returns:
        the ``keras.Model`` of the network.
    """
    import keras

    while True:
        nested = [layer for layer in model.layers
                  if isinstance(layer, keras.Model)]
        if len(nested) != 1:
            return model
        model = nested[0]


def _flat_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def _target_layers(network):
    """``{layer name: {weight name: variable}}`` in Keras' saving order."""
    targets = {}
    for layer in _flat_layers(network):
        store = {}
        layer.save_own_variables(store)
        if store:
            targets[layer.name] = {
                store[key].name: store[key]
                for key in sorted(store, key=int)}
    return targets


def _source_layer(layer_name, tensors):
    """The source layer for a target layer: the same name, else the
    keras.applications name of the same layer (module docstring)."""
    candidates = [layer_name]
    if layer_name.endswith("_conv"):
        candidates.append(layer_name[:-len("_conv")])
    if layer_name == "logits":
        candidates.append("predictions")
    for candidate in candidates:
        if candidate in tensors:
            return candidate
    return None


def _named(weights, variables):
    """The source layer's weights keyed by the target's weight names.

    Named sources pass through, unless none of their names is the
    target's (names from Keras' counters): those go by order, as unnamed
    ones (``.weights.h5``) do, taking the target layer's names in order;
    one tensor more than a target kernel is its bias (a convolution with
    a bias loaded into one without).
    """
    if not all(key.isdigit() for key in weights):
        if variables and len(weights) == len(variables) and not (
                set(weights) & set(variables)):
            # Weights Keras named by a counter of the process
            # ("variable_36": ConvNeXt's layer scale): by order.
            return dict(zip(variables, weights.values()))
        return weights
    names = list(variables)
    values = [weights[key] for key in sorted(weights, key=int)]
    if names == ["kernel"] and len(values) == 2:
        names = ["kernel", "bias"]
    if len(names) != len(values):
        return {}
    return dict(zip(names, values))


def _fold_conv_biases(tensors, targets):
    """Folds a source convolution's bias into the batch norm after it.

    Applies where the target convolution ``X_conv`` has no bias and the
    target and source both have a batch norm ``X_bn``. The folded bias is
    kept under ``_folded_bias`` so that the report counts it as used.
    """
    tensors = dict(tensors)
    for name, variables in targets.items():
        if not name.endswith("_conv") or "bias" in variables:
            continue
        bn_name = name[:-len("_conv")] + "_bn"
        conv = _source_layer(name, tensors)
        if conv is None or bn_name not in tensors \
                or "moving_mean" not in targets.get(bn_name, {}):
            continue
        conv_weights = _named(tensors[conv], {"kernel": None})
        bn = _named(tensors[bn_name], targets[bn_name])
        if "bias" not in conv_weights or "moving_mean" not in bn \
                or bn["moving_mean"].shape != conv_weights["bias"].shape:
            continue
        bn = dict(bn)
        bn["moving_mean"] = bn["moving_mean"] - conv_weights["bias"]
        tensors[bn_name] = bn
        tensors[conv] = {"kernel": conv_weights["kernel"],
                         "_folded_bias": conv_weights["bias"]}
    return tensors


def _listing(names):
    shown = ", ".join(names[:_LISTED])
    if len(names) > _LISTED:
        shown += f" and {len(names) - _LISTED} more"
    return shown


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _first_line(error):
    return (str(error).strip().splitlines() or [""])[0][:200]

