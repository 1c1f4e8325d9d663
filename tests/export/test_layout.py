"""Tests of the TF Serving directory layout helpers."""

import os

import pytest

from tfcnn.export import layout


@pytest.mark.parametrize("name", ["digits", "lenet5_v2", "a.b-c", "7"])
def test_good_model_names_pass(name):
    assert layout.check_model_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "..", ".hidden", "a/b", "../x", "a\\b", "x" * 129, "a b",
             "é", None, 3])
def test_unsafe_model_names_are_refused(name):
    with pytest.raises(ValueError, match="Received: name="):
        layout.check_model_name(name)
    assert not layout.is_model_name(name)


@pytest.mark.parametrize("text,version", [
    ("1", 1), ("42", 42), ("0", None), ("007", None), ("-1", None),
    ("1.5", None), (".tmp-x", None), ("", None)])
def test_parse_version(text, version):
    assert layout.parse_version(text) == version


def _version(model_dir, name, with_pb=True):
    path = model_dir / name
    path.mkdir(parents=True)
    if with_pb:
        (path / layout.SAVED_MODEL_FILE).write_bytes(b"")
    return path


def test_list_versions_counts_only_numbered_dirs_with_a_saved_model(
        tmp_path):
    model_dir = tmp_path / "m"
    for name in ("1", "10", "2"):
        _version(model_dir, name)
    _version(model_dir, "3", with_pb=False)  # being written by someone
    _version(model_dir, ".tmp-abc")
    _version(model_dir, "latest")
    assert layout.list_versions(model_dir) == [1, 2, 10]
    assert layout.list_versions(tmp_path / "missing") == []


def test_resolve_version_dir_picks_the_newest(tmp_path):
    model_dir = tmp_path / "m"
    _version(model_dir, "2")
    _version(model_dir, "11")
    assert layout.resolve_version_dir(model_dir) == (model_dir / "11", 11)
    assert layout.resolve_version_dir(model_dir / "2") == (
        model_dir / "2", 2)
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        layout.resolve_version_dir(tmp_path)


def test_list_models_skips_unsafe_names_and_links_out_of_the_base(
        tmp_path):
    base = tmp_path / "base"
    (base / "good").mkdir(parents=True)
    (base / ".hidden").mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", base / "escape")
    (base / "file").write_text("not a model")
    assert layout.list_models(base) == {"good": (base / "good").resolve()}
    assert layout.list_models(tmp_path / "missing") == {}
