"""The models a server serves: discovery, version policies, hot-swapping.

A ``ModelRepository`` serves either every model folder under an export
root (``<export_dir>/<name>/<version>/``, see ``tfcnn.export.layout``)
with TF Serving's default version policy (the newest version only), or
the models of a model config file (``tfcnn.serve.config``), each with its
own policy and version labels. It polls for new and removed versions, so
a newly exported version is served without a restart: it is loaded in the
background, becomes the default once it is ready, and the versions that
leave the policy are then unloaded (TF Serving's availability-preserving
order).
Requests keep being answered by the versions already loaded meanwhile.

A version that fails to load (a corrupt file; a version copied file by
file, ``saved_model.pb`` first) is reported in the model's status and
retried whenever anything in its folder changes; the policy then falls back
to the newest version that does load, so the previous one keeps serving.
Request paths never reach the file system: a model is looked up by name
among the configured or discovered ones.
"""

import ctypes
import gc
import logging
import os
import threading

import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from tfcnn.errors import NotFoundError
from tfcnn.errors import ServingError
from tfcnn.export import arguments
from tfcnn.export import layout
from tfcnn.serve import config as config_lib
from tfcnn.serve import inputs as inputs_lib

_log = logging.getLogger(__name__)


class ServedVersion:
    """One loaded version of a model.

    Attributes:
        name: str, the model name.
        version: int.
        path: str, the version directory.
        signatures: dict, signature name -> concrete function.
        signature_defs: dict, signature name -> ``SignatureDef`` proto.
        signature_def: dict, the SignatureDefMap as TF Serving's metadata
            API writes it (JSON, proto field names).
        batchers: dict, signature name -> the request batcher the server
            keeps for it (``tfcnn.serve.batching``); dropped with the
            version.
        string_kinds: dict, signature name -> ``inputs.StringKind``, what
            the signature's string inputs hold (read from its graph once,
            at load).
    """

    def __init__(self, name, version, path):
        self.name = name
        self.version = version
        self.path = str(path)
        self.signature_defs = _read_signature_defs(self.path)
        self._loaded = tf.saved_model.load(self.path)
        self.signatures = dict(self._loaded.signatures)
        self.signature_def = {"signature_def": {
            # TF Serving prints default values too ("unknown_rank": false,
            # a dim's "name": "", "defaults": {}).
            key: json_format.MessageToDict(
                value, preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True)
            for key, value in sorted(self.signature_defs.items())}}
        self.string_kinds = {key: inputs_lib.string_kind(function)
                             for key, function in self.signatures.items()}
        self.batchers = {}
        self.lock = threading.Lock()

    def input_specs(self, signature_name):
        """Returns ``{input name: tf.TensorSpec}`` of a signature."""
        function = self.signatures[signature_name]
        return dict(function.structured_input_signature[1])


def _read_signature_defs(path):
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, layout.SAVED_MODEL_FILE), "rb") as f:
        proto.ParseFromString(f.read())
    # Every SignatureDef, __saved_model_init_op included, as TF Serving's
    # metadata lists them.
    return dict(proto.meta_graphs[0].signature_def.items())


def _release_memory():
    """Frees unloaded versions and hands the freed heap back to the OS.

    SavedModels hold reference cycles, so they go at the next collection;
    glibc keeps freed memory in its arenas until ``malloc_trim`` returns
    it, so without it the resident size would not fall back.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


def _fingerprint(path):
    """Names, sizes and modification times of every file under ``path``."""
    entries = []
    for root, _, files in os.walk(path):
        for file_name in files:
            full = os.path.join(root, file_name)
            try:
                info = os.stat(full)
            except OSError:
                continue
            entries.append((os.path.relpath(full, path), info.st_size,
                            info.st_mtime_ns))
    return tuple(sorted(entries))


class ModelRepository:
    """Loads and tracks the served versions of models.

    Args:
        export_dir: str or path, the export root: every model folder
            under it (a TF Serving model base path) is served with the
            default policy (the newest version). Ignored when
            ``model_configs`` is given.
        poll_seconds: float, how often the background thread looks for new
            and removed versions; 0 looks once, at start (TF Serving's
            ``--file_system_poll_wait_seconds=0``). Defaults to 1.0 (TF
            Serving's default).
        model_configs: sequence of ``config.ModelConfig`` (from a model
            config file), or None. Defaults to None.

    Example:

    >>> repository = ModelRepository("saved_models")
    >>> repository.refresh()
    >>> repository.get("digits").version
    3
    """

    def __init__(self, export_dir=None, poll_seconds=1.0, model_configs=None):
        if not poll_seconds >= 0:
            raise arguments.ArgumentError("poll_seconds must be >= 0. "
                             f"Received: poll_seconds={poll_seconds!r}")
        if export_dir is None and model_configs is None:
            raise arguments.ArgumentError(
                "give export_dir or model_configs. Received: neither")
        self.export_dir = export_dir
        self.poll_seconds = poll_seconds
        self._configs = (None if model_configs is None
                         else list(model_configs))
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._served = {}   # name -> {version: ServedVersion}
        self._failed = {}   # (name, version) -> (fingerprint, message)
        self._ended = {}    # name -> versions unloaded by the policy
        self._labels = {}   # name -> {label: version}
        self._stop = threading.Event()
        self._thread = None

    def model_configs(self):
        """The ``ModelConfig`` of every model served now."""
        if self._configs is not None:
            return list(self._configs)
        return [config_lib.ModelConfig(name, path) for name, path in
                sorted(layout.list_models(self.export_dir).items())]

    def refresh(self):
        """Scans once: loads what the policies want, unloads the rest.

        Loading happens outside the lookup lock, so requests are answered
        by the versions already loaded meanwhile; versions leave only
        after the ones replacing them are loaded.
        """
        with self._refresh_lock:
            configs = self.model_configs()
            unloaded = False
            for model in configs:
                unloaded |= self._refresh_model(model)
            names = {model.name for model in configs}
            with self._lock:
                for name in [n for n in self._served if n not in names]:
                    del self._served[name]
                    _log.info("unloaded every version of %s", name)
                    unloaded = True
                self._labels = {model.name: dict(model.labels)
                                for model in configs}
            if unloaded:
                _release_memory()

    def _refresh_model(self, model):
        """Applies ``model``'s policy; returns whether it unloaded any."""
        name = model.name
        on_disk = {v: model.base_path / str(v)
                   for v in layout.list_versions(model.base_path)}
        with self._lock:
            loaded = set(self._served.get(name, {}))
        while True:
            candidates = [v for v in on_disk if v in loaded
                          or not self._still_failed(name, v, on_disk[v])]
            wanted = model.policy.wanted(candidates)
            to_load = [v for v in wanted if v not in loaded]
            if not to_load:
                break
            for version in to_load:
                if self._load(name, version, on_disk[version]):
                    loaded.add(version)
        with self._lock:
            served = self._served.get(name, {})
            gone = [v for v in served if v not in wanted]
            for version in gone:
                del served[version]
                self._ended.setdefault(name, set()).add(version)
                _log.info("unloaded %s version %d", name, version)
            if name in self._served and not served:
                del self._served[name]
            self._failed = {key: value
                            for key, value in self._failed.items()
                            if key[0] != name or key[1] in on_disk}
            ended = self._ended.get(name, set())
            ended &= set(on_disk) - set(served)
        return bool(gone)

    def _still_failed(self, name, version, path):
        """True if ``version`` failed to load and its folder is unchanged."""
        with self._lock:
            failed = self._failed.get((name, version))
        return failed is not None and failed[0] == _fingerprint(path)

    def _load(self, name, version, path):
        fingerprint = _fingerprint(path)
        try:
            served = ServedVersion(name, version, path)
        except Exception as error:  # noqa: BLE001  (any load failure)
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            _log.error("failed to load %s version %d: %s", name, version,
                       message)
            with self._lock:
                self._failed[(name, version)] = (fingerprint, message)
            return False
        with self._lock:
            self._served.setdefault(name, {})[version] = served
            self._failed.pop((name, version), None)
            self._ended.get(name, set()).discard(version)
        _log.info("loaded %s version %d from %s", name, version, path)
        return True

    def start(self):
        """Loads what is there now, then polls in a daemon thread."""
        self.refresh()
        if self._thread is None and self.poll_seconds > 0:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._poll, name="tfcnn-model-poller", daemon=True)
            self._thread.start()

    def stop(self):
        """Stops the polling thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001  (keep polling)
                _log.exception("model poll failed")

    def loaded(self):
        """``(name, version, path)`` of every loaded version, sorted."""
        with self._lock:
            return [(name, version, served.path)
                    for name, versions in sorted(self._served.items())
                    for version, served in sorted(versions.items())]

    def names(self):
        """Returns the names of the models with a loaded version."""
        with self._lock:
            return sorted(self._served)

    def get(self, name, version=None, label=None):
        """Returns the ``ServedVersion`` of ``name``.

        Args:
            name: str, the model name.
            version: int or None, a version; None with no label: the
                newest loaded one.
            label: str or None, a version label of the model config.

        Raises:
            NotFoundError: no such model, version or label is loaded.
        """
        with self._lock:
            versions = self._served.get(name)
            if not versions:
                raise NotFoundError(
                    f"Servable not found for request: model {name!r}")
            if label is not None:
                version = self._label_version(name, label)
                if version not in versions:
                    raise NotFoundError(
                        f"Servable not found for request: model {name!r} "
                        f"version {version} (label {label!r}) is not "
                        "loaded")
                return versions[version]
            if version is None:
                return versions[max(versions)]
            if version not in versions:
                raise NotFoundError(
                    f"Servable not found for request: model {name!r} "
                    f"version {version}")
            return versions[version]

    def _label_version(self, name, label):
        version = self._labels.get(name, {}).get(label)
        if version is None:
            # TF Serving's answer (ServerCore): a label the config does
            # not define is the request's mistake, INVALID_ARGUMENT.
            raise ServingError(f"Unrecognized servable version label "
                               f"{label!r} of model {name!r}")
        return version

    def status(self, name, version=None, label=None):
        """Returns TF Serving's ``model_version_status`` list for ``name``.

        Loaded versions are AVAILABLE; ones that failed to load END with
        their error; ones the policy unloaded END with OK. Newest first.

        Raises:
            NotFoundError: the model (or the version or label) is unknown.
        """
        with self._lock:
            if label is not None:
                version = self._label_version(name, label)
            states = {v: ("END", "OK", "")
                      for v in self._ended.get(name, ())}
            states.update({v: ("AVAILABLE", "OK", "")
                           for v in self._served.get(name, {})})
            for (model, v), (_, message) in self._failed.items():
                if model == name:
                    states[v] = ("END", "UNKNOWN", message)
        if version is not None:
            states = {v: s for v, s in states.items() if v == version}
        if not states:
            what = f"model {name!r}" + (
                f" version {version}" if version is not None else "")
            raise NotFoundError(f"Could not find any versions of {what}")
        return [{"version": str(v), "state": state,
                 "status": {"error_code": code, "error_message": message}}
                for v, (state, code, message) in sorted(
                    states.items(), reverse=True)]
