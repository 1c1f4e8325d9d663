"""Tests for tfcnn.datasets.digits: the embedded quickstart dataset."""

import json

import pytest
from PIL import Image

from tfcnn.datasets import digits
from tfcnn.errors import DataError


def test_writes_class_folders_with_a_stratified_test_split(tmp_path):
    out = tmp_path / "digits"
    summary = digits.write_digits(out, test_fraction=0.2, seed=0)
    assert summary["train"] + summary["test"] == 1797
    assert summary["classes"] == [str(d) for d in range(10)]
    for split in ("train", "test"):
        folders = sorted(p.name for p in (out / split).iterdir())
        assert folders == summary["classes"]
        count = sum(1 for _ in (out / split).glob("*/*.png"))
        assert count == summary[split]
    image = Image.open(next((out / "train" / "3").glob("*.png")))
    assert image.size == (8, 8)
    assert digits.is_complete(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # A complete folder is kept as it is.
    assert digits.write_digits(out) == json.loads(
        (out / "digits.json").read_text())


def test_an_interrupted_write_leaves_no_folder(tmp_path, monkeypatch):
    calls = []

    def fail_on_the_tenth(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 10:
            raise KeyboardInterrupt("simulated kill")
        return original(self, path, *args, **kwargs)

    original = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", fail_on_the_tenth)
    with pytest.raises(KeyboardInterrupt):
        digits.write_digits(tmp_path / "digits")
    assert list(tmp_path.iterdir()) == []


def _files(root, split):
    return {p.relative_to(root / split).as_posix()
            for p in (root / split).glob("*/*.png")}


def test_subsets_share_the_split_of_all_ten_digits(tmp_path):
    everything = digits.write_digits(tmp_path / "all")
    few = digits.write_digits(tmp_path / "few", classes=[9, 5, 6, 7, 8],
                              per_class=10)
    rest = digits.write_digits(tmp_path / "rest", classes=range(5))
    assert everything["classes"] == [str(d) for d in range(10)]
    assert few["classes"] == ["5", "6", "7", "8", "9"]
    assert few["train"] == 50 and rest["classes"] == ["0", "1", "2", "3",
                                                        "4"]
    all_train = _files(tmp_path / "all", "train")
    all_test = _files(tmp_path / "all", "test")
    few_train = _files(tmp_path / "few", "train")
    assert few_train <= all_train
    assert {f.split("/")[0] for f in few_train} == {"5", "6", "7", "8", "9"}
    # The test split of 5-9 is whole, and the same as in the full set.
    assert _files(tmp_path / "few", "test") == {
        f for f in all_test if f.split("/")[0] in "56789"}
    assert len(_files(tmp_path / "rest", "train")) == rest["train"]
    assert not {f.split("/")[1] for f in _files(tmp_path / "rest", "train")} \
        & {f.split("/")[1] for f in few_train}


def test_a_folder_holding_another_subset_is_refused(tmp_path):
    digits.write_digits(tmp_path / "d", classes=[0, 1])
    again = digits.write_digits(tmp_path / "d", classes=[1, 0])
    assert json.loads((tmp_path / "d" / "digits.json").read_text()) == again
    with pytest.raises(DataError, match="choose another data.path"):
        digits.write_digits(tmp_path / "d", classes=[0, 1], per_class=5)
    with pytest.raises(DataError, match="digits 0-9"):
        digits.write_digits(tmp_path / "e", classes=[10])
