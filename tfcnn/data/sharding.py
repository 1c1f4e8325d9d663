"""Shard planning and writing: how many shards, which file goes where, and
writing each shard so that no half-written shard is ever visible.

A shard is written to a hidden temporary name (``.train-00000-of-00004.
tfrecord.tmp``, which no ``train-*`` glob matches), flushed to disk, and
renamed to its final name only when complete. Renaming within one folder is
atomic, so a reader sees either no shard or the whole shard.
"""

import hashlib
import math
import random
import re

from tfcnn import atomic_files
from tfcnn import storage
from tfcnn.errors import DataError

SHARD_SUFFIX = ".tfrecord"
# The reference tools aim at shards of ~100-200 MB: big enough to read
# sequentially at disk speed, small enough to spread over workers.
TARGET_SHARD_BYTES = 128 * 2**20
_SHARD_RE = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-"
                       r"(?P<count>\d{5})(?:\.tfrecord)?$")


def shard_filename(split, index, num_shards):
    """``train-00003-of-00128.tfrecord`` (reference name plus suffix)."""
    return f"{split}-{index:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"


def is_shard_filename(name):
    """Whether ``name`` is a shard name (with or without the suffix)."""
    return _SHARD_RE.match(name) is not None


def parse_shard_filename(name):
    """The split prefix of a shard name (``val`` of
    ``val-00001-of-00004``), or None for another name."""
    match = _SHARD_RE.match(name)
    return match["split"] if match else None


def num_shards_for(total_bytes, num_files, requested=0):
    """Chooses the number of shards of one split.

    Args:
        total_bytes: int, source bytes of the split.
        num_files: int, files in the split.
        requested: int, the user's choice; 0 picks one shard per
            ``TARGET_SHARD_BYTES``.

    Returns:
        int in ``[1, max(1, num_files)]``: never an empty shard.
    """
    if requested < 0:
        raise DataError(
            f"num_shards must be >= 0. Received: num_shards={requested}")
    wanted = requested or math.ceil(total_bytes / TARGET_SHARD_BYTES)
    return max(1, min(wanted, num_files))


def assign_shards(items, num_shards, seed, split):
    """Shuffles ``items`` with a seeded generator and cuts them into shards.

    Shards get contiguous runs of the shuffled order, so each mixes all
    classes (the reference tools shuffle too) and their sizes differ by at
    most one.

    Args:
        items: list, already in a deterministic order.
        num_shards: int >= 1.
        seed: int.
        split: str, mixed into the seed so splits shuffle independently.

    Returns:
        list of ``num_shards`` lists.
    """
    order = list(items)
    random.Random(f"{seed}/shards/{split}").shuffle(order)
    bounds = [i * len(order) // num_shards for i in range(num_shards + 1)]
    return [order[bounds[i]:bounds[i + 1]] for i in range(num_shards)]


def file_sha256(path, chunk=2**22):
    """Hex sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with storage.open_file(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def publish(tmp_path, final_path, before_rename=None):
    """Flushes ``tmp_path`` to disk and renames it to ``final_path``.

    Args:
        tmp_path: Path of the complete temporary file.
        final_path: Path it is renamed to.
        before_rename: callable ``(bytes, sha256)`` or None, called after
            the file is hashed and before it becomes visible (ingest records
            the shard in its journal there, so that no visible shard is
            ever missing from the journal).

    Returns:
        ``(bytes, sha256)`` of the published file.
    """
    size = storage.path(tmp_path).stat().st_size
    digest = file_sha256(tmp_path)
    if before_rename is not None:
        before_rename(size, digest)
    atomic_files.replace_durably(tmp_path, final_path)
    return size, digest


def remove_stale(out, keep, owned, own_files=()):
    """Deletes temporary files and our shard files not named in ``keep``.

    Only what is ours is touched: shard files named in ``owned`` (what an
    earlier ingest recorded in its manifest or journal) and the hidden
    temporaries of shards and of ``own_files``. Anything else in ``out``,
    other tools' shards included, is left alone.

    Args:
        out: Path, the output folder.
        keep: set of shard file names to keep.
        owned: set of shard file names that an ingest wrote into ``out``.
        own_files: names (``manifest.json``, ...) whose temporaries are ours.

    Returns:
        list of removed names.
    """
    removed = []
    for entry in storage.path(out).iterdir():
        name = entry.name
        stem = name[1:-len(atomic_files.TMP_SUFFIX)]
        ours_tmp = atomic_files.is_temporary_name(name) and (
            is_shard_filename(stem) or stem in own_files)
        stale = name in owned and name not in keep
        if entry.is_file() and (ours_tmp or stale):
            entry.unlink()
            removed.append(name)
    return removed
