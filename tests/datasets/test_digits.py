"""Tests for tfcnn.datasets.digits: the embedded quickstart dataset."""

import json

import pytest
from PIL import Image

from tfcnn.datasets import digits


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
