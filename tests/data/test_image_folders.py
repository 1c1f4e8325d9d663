"""Tests for tfcnn.data.image_folders: layouts and the stratified split."""

import pytest

from tfcnn.data import image_folders
from tfcnn.errors import DataError


def _touch(root, *relpaths):
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * len(rel))


def test_class_folder_layout(tmp_path):
    _touch(tmp_path, "b/1.jpg", "a/2.png", "a/deep/3.jpg", "a/.DS_Store",
           ".hidden/4.jpg", "loose.jpg")
    tree = image_folders.find_images(tmp_path)
    assert tree.class_names == ("a", "b")
    assert [f.relpath for f in tree.splits["train"]] == [
        "a/2.png", "a/deep/3.jpg", "b/1.jpg"]
    assert tree.splits["train"][0].size == len("a/2.png")
    assert tree.rejected == []  # loose.jpg: in the source folder itself
    assert not tree.has_validation_folder and tree.num_files == 3


def test_split_folder_layout(tmp_path):
    _touch(tmp_path, "train/cat/1.jpg", "train/dog/2.jpg",
           "validation/dog/3.jpg", "test/cat/4.jpg", "test/owl/5.jpg",
           "README.txt", "test/6.jpg")
    tree = image_folders.find_images(tmp_path)
    assert tree.class_names == ("cat", "dog")
    assert set(tree.splits) == {"train", "validation", "test"}
    assert [(f.relpath, split, reason) for f, split, reason in
            tree.rejected] == [
        ("test/6.jpg", "test", "not in a class folder"),
        ("test/owl/5.jpg", "test", "class folder 'owl' has no training "
                                   "folder")]
    assert tree.has_validation_folder and tree.num_files == 6


def test_a_class_named_train_among_others_is_a_class(tmp_path):
    _touch(tmp_path, "train/1.jpg", "bus/2.jpg")
    tree = image_folders.find_images(tmp_path)
    assert tree.class_names == ("bus", "train")


def test_split_validation_is_stratified_and_seeded(tmp_path):
    _touch(tmp_path, *[f"a/{i}.jpg" for i in range(20)],
           *[f"b/{i}.jpg" for i in range(10)])
    files = image_folders.find_images(tmp_path).splits["train"]
    train, validation = image_folders.split_validation(files, 0.2, seed=0)
    assert len(train) + len(validation) == 30
    assert sorted(f.class_name for f in validation) == ["a"] * 4 + ["b"] * 2
    again = image_folders.split_validation(files, 0.2, seed=0)[1]
    other = image_folders.split_validation(files, 0.2, seed=1)[1]
    assert again == validation != other
    # Adding files to one class does not move the other class's choice.
    more = files + [image_folders.SourceFile("a/new.jpg", "a", 1)]
    held = image_folders.split_validation(more, 0.2, seed=0)[1]
    assert [f for f in held if f.class_name == "b"] == [
        f for f in validation if f.class_name == "b"]


def test_errors(tmp_path):
    with pytest.raises(DataError, match="source folder not found"):
        image_folders.find_images(tmp_path / "missing")
    with pytest.raises(DataError, match="no class folders"):
        image_folders.find_images(tmp_path)
    with pytest.raises(DataError, match="validation_split=1.5"):
        image_folders.split_validation([], 1.5, seed=0)
