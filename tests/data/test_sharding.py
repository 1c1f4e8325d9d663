"""Tests for tfcnn.data.sharding and tfcnn.atomic_files."""

import hashlib

import pytest

from tfcnn import atomic_files
from tfcnn.data import sharding


def test_shard_names():
    assert sharding.shard_filename("train", 3, 128) == (
        "train-00003-of-00128.tfrecord")
    assert sharding.is_shard_filename("train-00003-of-00128.tfrecord")
    assert sharding.is_shard_filename("validation-00000-of-00128")
    assert not sharding.is_shard_filename("train-3-of-128")
    assert not sharding.is_shard_filename(".train-00000-of-00001.tfrecord.tmp")


@pytest.mark.parametrize("total_bytes, files, requested, expected", [
    (0, 10, 0, 1),
    (sharding.TARGET_SHARD_BYTES * 5 + 1, 1000, 0, 6),
    (sharding.TARGET_SHARD_BYTES * 50, 7, 0, 7),  # never an empty shard
    (10, 100, 4, 4),
    (10, 3, 4, 3),
    (0, 0, 0, 1),
])
def test_num_shards_for(total_bytes, files, requested, expected):
    assert sharding.num_shards_for(total_bytes, files, requested) == expected


def test_num_shards_rejects_negative():
    with pytest.raises(ValueError, match="num_shards=-1"):
        sharding.num_shards_for(1, 1, -1)


def test_assign_shards_is_a_seeded_balanced_partition():
    items = list(range(103))
    shards = sharding.assign_shards(items, 4, seed=0, split="train")
    assert sorted(x for shard in shards for x in shard) == items
    assert sorted(len(s) for s in shards) == [25, 26, 26, 26]
    assert shards == sharding.assign_shards(items, 4, 0, "train")
    assert shards != sharding.assign_shards(items, 4, 1, "train")
    assert shards != sharding.assign_shards(items, 4, 0, "validation")


def test_publish_renames_after_hashing(tmp_path):
    final = tmp_path / "train-00000-of-00001.tfrecord"
    tmp = atomic_files.temporary_path(final)
    assert tmp.name == ".train-00000-of-00001.tfrecord.tmp"
    tmp.write_bytes(b"records")
    seen = []
    size, digest = sharding.publish(
        tmp, final, before_rename=lambda *a: seen.append(
            (a, final.exists())))
    assert (size, digest) == (7, hashlib.sha256(b"records").hexdigest())
    assert seen == [((7, digest), False)]  # called before the rename
    assert final.read_bytes() == b"records" and not tmp.exists()


def test_remove_stale_touches_only_our_files(tmp_path):
    for name in ("train-00000-of-00002.tfrecord", "train-00001-of-00002",
                 "train-00000-of-01024", ".train-00000-of-00002.tfrecord.tmp",
                 ".manifest.json.tmp", ".notes.tmp", "notes.txt",
                 "manifest.json"):
        (tmp_path / name).write_bytes(b"")
    removed = sharding.remove_stale(
        tmp_path, {"train-00000-of-00002.tfrecord"},
        owned={"train-00000-of-00002.tfrecord", "train-00001-of-00002"},
        own_files=("manifest.json",))
    assert sorted(removed) == [".manifest.json.tmp",
                               ".train-00000-of-00002.tfrecord.tmp",
                               "train-00001-of-00002"]
    # Another tool's shard is not ours to delete, whatever its name.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".notes.tmp", "manifest.json", "notes.txt",
        "train-00000-of-00002.tfrecord", "train-00000-of-01024"]


def test_write_bytes_atomic_replaces(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text("old")
    atomic_files.write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
