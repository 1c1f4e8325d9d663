"""Tests of ``tfcnn predict`` (library function and command)."""

import json
import os
import shutil

import pytest

from tests.export import contract_model
from tfcnn import cli
from tfcnn.errors import DataError
from tfcnn.serve import predict


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, data in enumerate(contract_model.encoded_images(3, fmt="jpeg")):
        path = folder / f"img{i}.jpg"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def test_predict_with_a_model_dir_uses_the_newest_version(model_base,
                                                         images):
    result = predict.predict(model_base / "tiny", images, top_k=2)
    assert result["version"] == 1
    assert result["saved_model"].endswith("tiny/1")
    assert [p["image"] for p in result["predictions"]] == images
    first = result["predictions"][0]
    assert first["class_names"][0] == "ant" and first["class_ids"][0] == 0
    assert len(first["scores"]) == 2
    assert first["scores"][0] >= first["scores"][1]
    json.dumps(result)


def test_top_k_is_limited_to_the_exported_k(model_base, images):
    result = predict.predict(model_base / "tiny" / "1", images[:1], top_k=9)
    assert result["top_k"] == 2
    assert len(result["predictions"][0]["class_ids"]) == 2
    one = predict.predict(model_base / "tiny", images[:1], top_k=1)
    assert one["predictions"][0]["class_names"] == ["ant"]


def test_format_predictions(model_base, images):
    text = predict.format_predictions(
        predict.predict(model_base / "tiny", images[:2], top_k=2))
    lines = text.splitlines()
    assert lines[0].startswith("model ")
    assert lines[1] == images[0]
    assert lines[2].lstrip().startswith("1. ant")


def test_undecodable_image_names_the_file(model_base, images, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.jpg"):
        predict.predict(model_base / "tiny", [images[0], str(bad)])


def test_missing_model_or_image(model_base, images, tmp_path):
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        predict.predict(tmp_path, images)
    with pytest.raises(FileNotFoundError):
        predict.predict(model_base / "tiny", [str(tmp_path / "no.png")])
    with pytest.raises(ValueError, match="Received: top_k=0"):
        predict.predict(model_base / "tiny", images, top_k=0)


def test_command_prints_one_json_object(model_base, images, capsys):
    assert cli.main(["predict", str(model_base / "tiny"), *images[:2],
                     "--top-k", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [p["class_names"] for p in result["predictions"]] == [
        ["ant"], ["ant"]]


def test_command_text_output_and_errors(model_base, images, tmp_path,
                                        capsys):
    assert cli.main(["predict", str(model_base / "tiny"), images[0]]) == 0
    assert "1. ant" in capsys.readouterr().out
    assert cli.main(["predict", str(tmp_path), images[0]]) == 2
    assert "no SavedModel" in capsys.readouterr().err


def test_command_reports_bad_arguments_in_one_line(model_base, images,
                                                   capsys):
    assert cli.main(["predict", str(model_base / "tiny"), images[0],
                     "--top-k", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfcnn predict: error: top_k must be")
    assert "Traceback" not in err


def _unreadable(tmp_path):
    """A file that opens but can't be read, whoever runs the test."""
    if os.geteuid() == 0:  # root reads any mode; the kernel refuses this
        return "/proc/self/mem"
    path = tmp_path / "secret.png"
    path.write_bytes(b"x")
    path.chmod(0)
    return str(path)


def test_directories_and_unreadable_files_are_one_line(model_base, images,
                                                       tmp_path, capsys):
    for bad, match in ((str(tmp_path), "is a directory"),
                       (_unreadable(tmp_path), "can't be read")):
        with pytest.raises(DataError, match=match):
            predict.predict(model_base / "tiny", [images[0], bad])
        assert cli.main(["predict", str(model_base / "tiny"), bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tfcnn predict: error: ") and match in err
        assert len(err.strip().splitlines()) == 1


def test_a_corrupt_saved_model_is_one_line(model_base, images, tmp_path,
                                           capsys):
    broken = tmp_path / "m" / "3"
    shutil.copytree(model_base / "tiny" / "1", broken)
    (broken / "saved_model.pb").write_bytes(b"\x0a\xff garbage")
    assert cli.main(["predict", str(broken), images[0]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfcnn predict: error: ")
    assert "not a loadable SavedModel" in err and str(broken) in err
    assert len(err.strip().splitlines()) == 1


def test_versions_beyond_int64_are_not_versions(model_base, tmp_path):
    huge = tmp_path / "m" / str(2**63)
    shutil.copytree(model_base / "tiny" / "1", huge)
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        predict.predict(tmp_path / "m", ["x.png"])


def test_class_maps_go_to_a_new_folder_never_over_a_file(tmp_path):
    assert predict.new_folder(tmp_path / "class_maps") == (
        tmp_path / "class_maps")
    (tmp_path / "class_maps").mkdir()
    (tmp_path / "class_maps_2").mkdir()
    assert predict.new_folder(tmp_path / "class_maps") == (
        tmp_path / "class_maps_3")
    out = tmp_path / "out"
    # Two inputs of one name would write one file: refused up front.
    with pytest.raises(DataError, match="would both write"):
        predict._class_map_paths(out, ["a/x.png", "b/x.jpg"])
    out.mkdir()
    (out / "x_class_map.png").write_bytes(b"earlier")
    with pytest.raises(DataError, match="x_class_map.png exists"):
        predict._class_map_paths(out, ["a/x.png"])
    assert predict._class_map_paths(out, ["a/y.png"]) == [
        out / "y_class_map.png"]
def test_an_image_bomb_is_refused_from_its_header(model_base, images,
                                                  tmp_path, capsys):
    from tests.serve.conftest import bomb_png

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(8000, 8000))
    assert cli.main(["predict", str(model_base / "tiny"), images[0],
                     str(bomb)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"tfcnn predict: error: {bomb}: a 8000x8000 image "
                   "(64000000 pixels) is larger than max_pixels=40000000 "
                   "(raise --max-pixels to allow it)")
    # Past PIL's own bomb limit: its message, still one line and exit 2.
    bomb.write_bytes(bomb_png(18000, 18000))
    assert cli.main(["predict", str(model_base / "tiny"), str(bomb)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tfcnn predict: error: {bomb}: ")
    assert "max_pixels=40000000" in err and "\n" not in err
    assert cli.main(["predict", str(model_base / "tiny"), images[0],
                     "--max-pixels", "10"]) == 2
    assert "max_pixels=10" in capsys.readouterr().err
