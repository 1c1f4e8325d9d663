"""The TF Serving directory layout: ``<base>/<name>/<version>/``.

A version is a directory whose name is a positive decimal integer and that
holds ``saved_model.pb``; TF Serving ignores every other entry, which is why
exports are written to hidden ``.tmp-*`` directories beside the versions and
renamed into place. This module imports no TensorFlow: the server and the
predict command use it too.
"""

import os
import pathlib
import re

from tfcnn.export import arguments

SAVED_MODEL_FILE = "saved_model.pb"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
METADATA_FILE = os.path.join("assets.extra", "tfcnn_export.json")

# TF Serving keeps versions as int64 (``ModelSpec.version``).
MAX_VERSION = 2**63 - 1

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_VERSION = re.compile(r"[1-9][0-9]{0,18}")


def check_model_name(name):
    """Returns ``name`` if it is a safe model name; raises otherwise.

    A model name is one path component: letters, digits, ``_``, ``.`` and
    ``-``, starting with a letter or digit, so it can't name a parent
    directory or a hidden one.

    Raises:
        ArgumentError: (a ValueError) the name is not one safe path
            component.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise arguments.ArgumentError(
            "name must be 1-128 letters, digits, '_', '.' or '-', starting "
            f"with a letter or digit. Received: name={name!r}")
    return name


def is_model_name(name):
    """True when ``name`` passes ``check_model_name``."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def parse_version(text):
    """Returns the int version named by ``text``, or None if it names none.

    A version is a decimal integer from 1 to ``MAX_VERSION`` (TF Serving's
    int64), written without leading zeros.
    """
    if isinstance(text, str) and _VERSION.fullmatch(text):
        version = int(text)
        if version <= MAX_VERSION:
            return version
    return None


def check_version(version):
    """Returns ``version`` if it is an int in [1, ``MAX_VERSION``].

    Raises:
        ArgumentError: (a ValueError) naming the value received.
    """
    if (isinstance(version, bool) or not isinstance(version, int)
            or not 1 <= version <= MAX_VERSION):
        raise arguments.ArgumentError(
            f"version must be an int from 1 to {MAX_VERSION} (TF Serving's "
            f"int64). Received: version={version!r}")
    return version


def list_versions(model_dir):
    """Returns the sorted published versions under ``model_dir``.

    Args:
        model_dir: path of ``<base>/<name>``.

    Returns:
        list of int; empty when the directory does not exist.
    """
    try:
        entries = list(os.scandir(model_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    versions = []
    for entry in entries:
        version = parse_version(entry.name)
        if version is not None and os.path.isfile(
                os.path.join(entry.path, SAVED_MODEL_FILE)):
            versions.append(version)
    return sorted(versions)


def list_models(export_dir):
    """Returns ``{name: model_dir}`` of the model folders in ``export_dir``.

    Only names that pass ``check_model_name`` and directories that resolve
    inside ``export_dir`` (a symlink out of it is skipped) count.
    """
    base = pathlib.Path(export_dir).resolve()
    models = {}
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return models
    for entry in entries:
        path = pathlib.Path(entry.path).resolve()
        if (is_model_name(entry.name) and path.is_dir()
                and path.parent == base):
            models[entry.name] = path
    return models


def resolve_version_dir(path):
    """Returns ``(version_dir, version)`` for a version or a model directory.

    Args:
        path: ``<base>/<name>/<version>`` or ``<base>/<name>`` (then the
            newest version).

    Raises:
        FileNotFoundError: no SavedModel there.
    """
    path = pathlib.Path(path)
    if (path / SAVED_MODEL_FILE).is_file():
        return path, parse_version(path.name)
    versions = list_versions(path)
    if not versions:
        raise FileNotFoundError(
            f"no SavedModel in {str(path)!r}: expected {SAVED_MODEL_FILE} "
            "or numbered version directories holding one")
    return path / str(versions[-1]), versions[-1]
