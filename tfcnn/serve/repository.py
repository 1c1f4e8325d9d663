"""The models a server serves: discovery, loading and hot-swapping.

A ``ModelRepository`` watches a TF Serving model base directory
(``<base>/<name>/<version>/``, see ``tfcnn.export.layout``), loads every
published version with ``tf.saved_model.load`` and polls for new and removed
versions, so a newly exported version is served without a restart: it is
loaded in the background and becomes the default once it is ready, while
requests keep being answered by the versions already loaded. Request paths
never reach the file system: a model is looked up by name among the
directories the scan found.
"""

import logging
import os
import threading

import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from tfcnn.errors import NotFoundError
from tfcnn.export import arguments
from tfcnn.export import layout

_log = logging.getLogger(__name__)
_INIT_OP_SIGNATURE = "__saved_model_init_op"


class ServedVersion:
    """One loaded version of a model.

    Attributes:
        name: str, the model name.
        version: int.
        path: str, the version directory.
        signatures: dict, signature name -> concrete function.
        signature_def: dict, the SignatureDefMap as TF Serving's metadata
            API writes it (JSON, proto field names).
    """

    def __init__(self, name, version, path):
        self.name = name
        self.version = version
        self.path = str(path)
        self._loaded = tf.saved_model.load(self.path)
        self.signatures = dict(self._loaded.signatures)
        self.signature_def = _read_signature_def(self.path)

    def input_specs(self, signature_name):
        """Returns ``{input name: tf.TensorSpec}`` of a signature."""
        function = self.signatures[signature_name]
        return dict(function.structured_input_signature[1])


def _read_signature_def(path):
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, layout.SAVED_MODEL_FILE), "rb") as f:
        proto.ParseFromString(f.read())
    signatures = {}
    for key, signature in proto.meta_graphs[0].signature_def.items():
        if key != _INIT_OP_SIGNATURE:
            signatures[key] = json_format.MessageToDict(
                signature, preserving_proto_field_name=True)
    return {"signature_def": dict(sorted(signatures.items()))}


class ModelRepository:
    """Loads and tracks every model version under a base directory.

    Args:
        base_dir: str or path, TF Serving's model base path.
        poll_seconds: float, how often the background thread looks for new
            and removed versions. Defaults to 1.0 (TF Serving's default).

    Example:

    >>> repository = ModelRepository("saved_models")
    >>> repository.refresh()
    >>> repository.get("digits").version
    3
    """

    def __init__(self, base_dir, poll_seconds=1.0):
        if not poll_seconds > 0:
            raise arguments.ArgumentError("poll_seconds must be > 0. "
                             f"Received: poll_seconds={poll_seconds!r}")
        self.base_dir = base_dir
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._served = {}   # name -> {version: ServedVersion}
        self._failed = {}   # (name, version) -> (mtime, error message)
        self._stop = threading.Event()
        self._thread = None

    def refresh(self):
        """Scans the base directory once: loads new versions, drops gone ones.

        Loading happens outside the lookup lock, so requests are answered
        by the versions already loaded meanwhile. A version that fails to
        load is reported by ``status`` and retried only when its
        ``saved_model.pb`` changes.
        """
        with self._refresh_lock:
            found = {}
            for name, model_dir in layout.list_models(self.base_dir).items():
                found[name] = {v: model_dir / str(v)
                               for v in layout.list_versions(model_dir)}
            with self._lock:
                current = {name: dict(versions)
                           for name, versions in self._served.items()}
            for name, versions in found.items():
                for version, path in versions.items():
                    if version not in current.get(name, {}):
                        self._load(name, version, path)
            with self._lock:
                for name in list(self._served):
                    for version in list(self._served[name]):
                        if version not in found.get(name, {}):
                            del self._served[name][version]
                            _log.info("unloaded %s version %d", name, version)
                    if not self._served[name]:
                        del self._served[name]
                self._failed = {key: value
                                for key, value in self._failed.items()
                                if key[1] in found.get(key[0], {})}

    def _load(self, name, version, path):
        try:
            mtime = os.stat(path / layout.SAVED_MODEL_FILE).st_mtime_ns
        except OSError:
            return
        failed = self._failed.get((name, version))
        if failed and failed[0] == mtime:
            return
        try:
            served = ServedVersion(name, version, path)
        except Exception as error:  # noqa: BLE001  (any load failure)
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            _log.error("failed to load %s version %d: %s", name, version,
                       message)
            with self._lock:
                self._failed[(name, version)] = (mtime, message)
            return
        with self._lock:
            self._served.setdefault(name, {})[version] = served
            self._failed.pop((name, version), None)
        _log.info("loaded %s version %d from %s", name, version, path)

    def start(self):
        """Loads what is there now, then polls in a daemon thread."""
        self.refresh()
        if self._thread is None:
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

    def names(self):
        """Returns the names of the models with a loaded version."""
        with self._lock:
            return sorted(self._served)

    def get(self, name, version=None):
        """Returns the ``ServedVersion`` of ``name`` (newest if no version).

        Raises:
            NotFoundError: no such model or version is loaded.
        """
        with self._lock:
            versions = self._served.get(name)
            if not versions:
                raise NotFoundError(
                    f"Servable not found for request: model {name!r}")
            if version is None:
                return versions[max(versions)]
            if version not in versions:
                raise NotFoundError(
                    f"Servable not found for request: model {name!r} "
                    f"version {version}")
            return versions[version]

    def status(self, name, version=None):
        """Returns TF Serving's ``model_version_status`` list for ``name``.

        Loaded versions are AVAILABLE, ones that failed to load END with
        their error, newest first.

        Raises:
            NotFoundError: the model (or the version) is unknown.
        """
        with self._lock:
            states = {v: ("AVAILABLE", "OK", "")
                      for v in self._served.get(name, {})}
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
