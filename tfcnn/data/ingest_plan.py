"""Planning and writing shards: what both ingests (classification and
segmentation) share.

``plan_shards`` deals each split's files to shards, ``check_in_order``
checks them in worker processes, and ``write_shards`` writes each shard
from the check results (under a temporary name, skipped and converted files
listed, journalled before its rename), asking the task's per-record
function for each record and its counts. ``write_plan`` takes the planned
shards and a function that writes them, and supplies the rest: an advisory
lock
(``OUT/.ingest.lock``), the check for a complete output of the same files
and options (its fingerprint), the journal of finished shards
(``OUT/.ingest-journal.jsonl``) that lets a killed run resume without
duplicates, the removal of temporaries and strays (never another tool's
shards), the progress bar, ``manifest.json`` written last, and the summary
line. ``is_complete`` tells whether a folder holds a complete, intact
ingest. ``tfcnn.data.classification_ingest`` (classification) and
``tfcnn.data.segmentation_ingest`` find the files, build their records and
assemble their manifests.
"""

import contextlib
import hashlib
import json
import os
import sys
import time

from tfcnn import atomic_files
from tfcnn import console
from tfcnn import storage
from tfcnn.data import image_folders
from tfcnn.data import manifest as manifest_lib
from tfcnn.data import sharding
from tfcnn.data import worker_pool
from tfcnn.errors import DataError

JOURNAL_NAME = ".ingest-journal.jsonl"
LOCK_NAME = ".ingest.lock"
# Files per task sent to a worker process: large enough to amortise the
# inter-process round trip, small enough to keep all workers busy.
CHUNK = 16
INFLIGHT_PER_WORKER = 4
# Starting a worker process costs about a second (a fresh interpreter that
# imports NumPy and Pillow), about what one core takes to check ~16 MB of
# JPEGs; smaller jobs are checked in this process.
MIN_BYTES_PER_WORKER = 16 * 2**20
_CRASHED = "the image decoder crashed on it (its worker process died)"


class Shard:
    """One planned shard: its split, name and files in write order."""

    def __init__(self, split, index, num_shards, files):
        self.split = split
        self.name = sharding.shard_filename(split, index, num_shards)
        self.files = files


def plan_shards(splits, num_shards, seed):
    """The shards of every split, in ``image_folders.SPLITS`` order.

    Args:
        splits: dict split name -> list of files (with ``relpath`` and
            ``size``).
        num_shards: int, shards per split; 0 picks one per ~128 MB
            (``tfcnn.data.sharding.num_shards_for``).
        seed: int; with the file list alone it decides each file's shard.

    Returns:
        list of ``Shard``.
    """
    shards = []
    for split in image_folders.SPLITS:
        files = splits.get(split)
        if not files:
            continue
        count = sharding.num_shards_for(sum(f.size for f in files),
                                        len(files), num_shards)
        for index, members in enumerate(
                sharding.assign_shards(files, count, seed, split)):
            shards.append(Shard(split, index, count, members))
    return shards


def write_plan(out, shards, options, num_files, *, write_shards,
               manifest_data, overwrite, progress, started):
    """Writes planned shards and the manifest, resuming an interrupted run.

    The part of ingest shared by its tasks (classification here,
    segmentation in ``tfcnn.data.segmentation_ingest``): the lock, the
    check for a complete output, the journal of finished shards, the
    removal of stale files, the progress bar, the manifest written last and
    the result line.

    Args:
        out: Path, the output folder (checked).
        shards: list of planned shards (``split``, ``name``, ``files`` with
            ``relpath`` and ``size``).
        options: dict of the ingest options (part of the fingerprint).
        num_files: int, files found (for the progress bar).
        write_shards: callable ``(out, pending_shards, bar, journal)``
            yielding ``(shard, result)`` as each shard is published.
        manifest_data: callable ``(shards, results, fingerprint)`` returning
            the manifest dict.
        overwrite: bool, rewrite a complete output.
        progress: bool, progress bar and warnings on stderr.
        started: float, ``time.perf_counter()`` when the ingest began.

    Returns:
        ``tfcnn.console.Result``: the manifest dict, and the result line
        (what was written, or that the output was already complete).
    """
    fingerprint = _fingerprint(shards, options)
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        done = None if overwrite else _existing_output(out, fingerprint)
        if done is not None:
            return console.Result(done, (
                f"ingest: {out} is already complete "
                f"({_split_summary(done)}); nothing written "
                f"({console.option_text('overwrite')} rewrites it)"))
        owned = _owned_shards(out)
        _refuse_foreign_shards(out, owned)
        if overwrite or (out / manifest_lib.MANIFEST_NAME).exists():
            # Asked to, or a manifest whose shards are damaged: start over.
            _clear(out, owned)
        journal = _Journal(out / JOURNAL_NAME, fingerprint)
        finished = journal.verified(out, {s.name for s in shards})
        sharding.remove_stale(out, set(finished), owned, own_files=(
            manifest_lib.MANIFEST_NAME, manifest_lib.STATS_NAME,
            JOURNAL_NAME))
        pending = [s for s in shards if s.name not in finished]
        results = dict(finished)
        with _progress_bar(num_files, progress) as bar:
            bar.update(num_files - sum(len(s.files) for s in pending))
            for shard, result in write_shards(out, pending, bar, journal):
                results[shard.name] = result
        data = manifest_data(shards, results, fingerprint)
        manifest_lib.write(out, data)
        journal.remove()
    if progress:
        for warning in data.get("warnings", []):
            console.progress(f"ingest: warning: {warning}")
    return console.Result(data, _summary(
        data, out, len(shards) - len(pending),
        time.perf_counter() - started))


def check_in_order(check, items, workers, result_type):
    """Yields ``check([item])[0]`` of each item, in order.

    With more than one worker, chunks of ``CHUNK`` items go to worker
    processes (``tfcnn.data.worker_pool``); an item that kills its worker
    is skipped.

    Args:
        check: picklable callable ``list -> list``, one check result per
            item.
        items: list of picklable items (paths, or image and mask paths).
        workers: int, processes (``worker_count``); 1 checks here.
        result_type: the class of the check results; an item that kills
            its worker gets ``result_type(skip_reason=...)``.

    Yields:
        one check result per item.
    """
    if workers <= 1 or len(items) <= CHUNK:
        for item in items:
            yield check([item])[0]
        return
    yield from worker_pool.map_in_order(
        check, (items[i:i + CHUNK] for i in range(0, len(items), CHUNK)),
        workers=workers,
        on_crash=lambda item: result_type(skip_reason=_CRASHED),
        inflight_per_worker=INFLIGHT_PER_WORKER)


def worker_count(workers, files):
    """Checking processes for ``files`` (with ``size``): ``workers``, or
    every core for 0, but none that would check under
    ``MIN_BYTES_PER_WORKER``."""
    return min(workers or available_cores(),
               sum(f.size for f in files) // MIN_BYTES_PER_WORKER)


def write_shards(out, shards, checked, bar, journal, *, new_result,
                 add_record):
    """Writes each planned shard from its files' check results.

    The files of a shard go in order into a hidden temporary file; a file
    that failed its check is listed with its reason, one converted on the
    way with its note. Each shard is recorded in the journal before its
    rename, so a shard under its final name is always in the journal (a
    kill in between leaves a journal entry whose file is missing: that
    shard is redone).

    Args:
        out: Path, the output folder.
        shards: list of ``Shard``, the shards to write.
        checked: iterator of the check results of every file of ``shards``
            in order (``skipped``, ``skip_reason``, ``note``); closed at the
            end.
        bar: the progress bar, advanced once per file.
        journal: the journal of finished shards.
        new_result: callable ``() -> dict``, the counts of an empty shard.
        add_record: callable ``(file, check_result, result) -> bytes``, the
            serialized example of a file that passed its check; it adds the
            record to the shard's counts in ``result``.

    Yields:
        ``(shard, result)`` once each shard is published; ``result`` holds
        the counts and ``records``, ``skipped``, ``converted``, ``bytes``
        and ``sha256``.
    """
    import tensorflow as tf

    try:
        for shard in shards:
            final = out / shard.name
            tmp = atomic_files.temporary_path(final)
            result = {"records": 0, **new_result(), "skipped": [],
                      "converted": []}
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for file in shard.files:
                    check = next(checked)
                    bar.update(1)
                    where = {"path": file.relpath, "split": shard.split}
                    if check.skipped:
                        result["skipped"].append(
                            {**where, "reason": check.skip_reason})
                        continue
                    if check.note:
                        result["converted"].append(
                            {**where, "note": check.note})
                    writer.write(add_record(file, check, result))
                    result["records"] += 1

            def record(size, digest, name=shard.name, result=result):
                result.update(bytes=size, sha256=digest)
                journal.append(name, result)

            sharding.publish(tmp, final, before_rename=record)
            yield shard, result
    finally:
        checked.close()


def sum_results(shards, results, *, new_split, add_result):
    """The shards' results summed per split, for the manifest.

    Args:
        shards: list of ``Shard``, in manifest order.
        results: dict shard name -> its result (``write_shards``').
        new_split: callable ``() -> dict``, a split's counts before any
            shard.
        add_result: callable ``(entry, result)`` adding a shard's counts
            to its split's ``entry``.

    Returns:
        ``(splits, skipped, converted)``: dict split -> entry (with
        ``count`` and ``shards``: name, records, bytes and sha256 of each),
        and every shard's skipped and converted files.
    """
    splits, skipped, converted = {}, [], []
    for shard in shards:
        result = results[shard.name]
        entry = splits.get(shard.split)
        if entry is None:
            entry = splits[shard.split] = {"count": 0, **new_split(),
                                           "shards": []}
        entry["count"] += result["records"]
        add_result(entry, result)
        entry["shards"].append({"name": shard.name,
                                "records": result["records"],
                                "bytes": result["bytes"],
                                "sha256": result["sha256"]})
        skipped.extend(result["skipped"])
        converted.extend(result["converted"])
    return splits, skipped, converted


def empty_validation(data, wanted, validation_split, *, too_few, item):
    """The warning for a validation split asked for but left empty, or
    None.

    Args:
        data: dict, the manifest.
        wanted: bool, whether the source has a validation split or one is
            held out.
        validation_split: float, the fraction held out.
        too_few: str, what was too few ("images per class").
        item: str, what was skipped ("file").
    """
    if wanted and not data["splits"].get(
            image_folders.VALIDATION, {}).get("count"):
        return (f"the validation split is empty (too few {too_few} for "
                f"validation_split={validation_split}, or every "
                f"validation {item} was skipped): training will run "
                "without validation")
    return None


def is_complete(out, *, verify_sha256=True):
    """Whether ``out`` holds a complete, intact ingest.

    True when ``manifest.json`` is valid and every shard it lists exists with
    its recorded size and (when it was recorded and ``verify_sha256``)
    sha256, and the shard record counts add up to the split counts.
    ``tfcnn run`` uses this to skip the ingest stage.

    Args:
        out: str or Path, the output folder.
        verify_sha256: bool, also hash every shard (reads all bytes).
            Defaults to True.

    Returns:
        bool.
    """
    try:
        manifest = manifest_lib.Manifest.load(out)
    except DataError:
        return False
    for split in manifest.splits:
        shards = manifest.shards(split)
        if sum(s.get("records", -1) for s in shards) != manifest.count(split):
            return False
        for shard in shards:
            if not _shard_intact(storage.path(out) / shard["name"], shard,
                                 verify_sha256):
                return False
    return True


def check_arguments(tree, out, workers, max_pixels):
    """Validates the arguments that planning does not; returns ``out``."""
    out = storage.path(out).expanduser().resolve()
    if out == tree.root or tree.root in out.parents:
        raise DataError(
            f"out must not be inside src (ingest would read its own shards). "
            f"Received: out={out}, src={tree.root}")
    if out.exists() and not out.is_dir():
        raise DataError(f"out exists and is not a folder. Received: out={out}")
    if workers < 0:
        raise DataError(f"workers must be >= 0. Received: workers={workers}")
    if max_pixels < 1:
        raise DataError(
            f"max_pixels must be >= 1. Received: max_pixels={max_pixels}")
    return out


def _fingerprint(shards, options):
    digest = hashlib.sha256()
    digest.update(json.dumps([manifest_lib.VERSION, options],
                             sort_keys=True).encode())
    for shard in shards:
        digest.update(shard.name.encode() + b"\0")
        for f in shard.files:
            digest.update(os.fsencode(f.relpath) + f"\0{f.size}\0".encode())
    return digest.hexdigest()


# Existing output ----------------------------------------------------------


@contextlib.contextmanager
def _exclusive(out):
    """Holds an advisory lock on ``out`` so two ingests never interleave.

    Object storage has no locks: on a URL none is taken, and two ingests
    must not write one URL at once (the README's object storage part).
    """
    if storage.is_url(out):
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks
        yield
        return
    path = out / LOCK_NAME
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DataError(
                f"another ingest is writing {out} (it holds {path}); wait "
                f"for it to finish. Received: out={out}") from None
        try:
            yield
        finally:
            # Unlinked while still held; a killed run leaves the file, but
            # the kernel drops its lock, so the next run takes it.
            try:
                os.remove(path)
            except FileNotFoundError:
                pass


def _existing_output(out, fingerprint):
    """Returns the manifest of a complete output of this very ingest, None
    when there is none or it is damaged, and raises for a complete output
    of other files or options.
    """
    if not (out / manifest_lib.MANIFEST_NAME).exists():
        return None
    try:
        data = manifest_lib.Manifest.load(out).to_dict()
    except DataError:
        return None
    if not is_complete(out):
        return None
    if data.get("fingerprint") != fingerprint:
        raise DataError(
            f"{out} already holds a complete ingest of other files or "
            "options; pass overwrite=True (--overwrite) to replace it. "
            f"Received: out={out}")
    return data


def _owned_shards(out):
    """Shard names that an ingest wrote into ``out``: those its manifest
    lists and those its journal recorded (of any plan)."""
    names = set()
    manifest = _json_or_none(_read_or_empty(out / manifest_lib.MANIFEST_NAME))
    if isinstance(manifest, dict) and manifest.get(
            "format") == manifest_lib.FORMAT:
        for entry in (manifest.get("splits") or {}).values():
            names.update(shard.get("name") for shard in entry.get(
                "shards", ()) if isinstance(shard, dict))
    for line in _read_or_empty(out / JOURNAL_NAME).splitlines()[1:]:
        entry = _json_or_none(line)
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.add(entry["name"])
    return names


def _refuse_foreign_shards(out, owned):
    """Raises ``DataError`` when ``out`` holds shards no ingest of ours
    wrote (another tool's): ingest deletes and replaces its own files only,
    with or without ``overwrite``."""
    foreign = sorted(
        entry.name for entry in storage.path(out).iterdir()
        if sharding.is_shard_filename(entry.name) and entry.is_file()
        and entry.name not in owned)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise DataError(
            f"{out} holds {foreign[0]}{more}, which no tfcnn ingest wrote "
            "there (not in its manifest.json or journal); ingest only "
            "replaces its own files, so move them or write to another "
            f"folder. Received: out={out}")


def _read_or_empty(path):
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _clear(out, owned):
    for name in (manifest_lib.MANIFEST_NAME, manifest_lib.STATS_NAME,
                 JOURNAL_NAME):
        (out / name).unlink(missing_ok=True)
    sharding.remove_stale(out, set(), owned, own_files=(
        manifest_lib.MANIFEST_NAME, manifest_lib.STATS_NAME))


def _shard_intact(path, recorded, verify_sha256):
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size != recorded.get("bytes", size):
        return False
    if verify_sha256 and "sha256" in recorded:
        return sharding.file_sha256(path) == recorded["sha256"]
    return True


class _Journal:
    """Append-only record of finished shards (one JSON line each).

    The first line holds the plan's fingerprint; a journal of another plan
    is discarded. A line torn by a kill is ignored, and its shard redone.
    """

    def __init__(self, path, fingerprint):
        self._path = path
        self._entries = {}
        lines = []
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
        if lines and _json_or_none(lines[0]) == {"fingerprint": fingerprint}:
            for line in lines[1:]:
                entry = _json_or_none(line)
                if isinstance(entry, dict) and "name" in entry:
                    self._entries[entry.pop("name")] = entry
        else:
            atomic_files.write_bytes_atomic(path, (json.dumps(
                {"fingerprint": fingerprint}) + "\n").encode())

    def verified(self, out, planned):
        """Journal entries of planned shards whose files are intact."""
        return {name: entry for name, entry in self._entries.items()
                if name in planned
                and _shard_intact(out / name, entry, verify_sha256=True)}

    def append(self, name, result):
        line = json.dumps({"name": name, **result}) + "\n"
        if storage.is_url(self._path):
            # Objects cannot be appended to: write the journal again whole.
            atomic_files.write_text_atomic(
                self._path, self._path.read_text(encoding="utf-8") + line)
            return
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def remove(self):
        self._path.unlink(missing_ok=True)


def _json_or_none(line):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def available_cores():
    """The cores this process may run on (its CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _progress_bar(total, enabled):
    from tqdm import auto

    return auto.tqdm(total=total, unit="img", desc="ingest",
                     disable=not enabled or not sys.stderr.isatty(),
                     file=sys.stderr, smoothing=0.1)


def _summary(data, out, resumed, seconds):
    written = sum(s["count"] for s in data["splits"].values())
    shards = sum(len(s["shards"]) for s in data["splits"].values())
    kept = f", {resumed} kept from an interrupted run" if resumed else ""
    return (f"ingest: wrote {written} records in {shards} "
            f"shard{'' if shards == 1 else 's'} ({_split_summary(data)}) to "
            f"{out}; skipped {len(data['skipped'])} of "
            f"{data['files_found']} files{kept} in {seconds:.1f}s"
            f"{_skipped_names(data['skipped'], out)}")


def _skipped_names(skipped, out, shown=3):
    """``": a.jpg, b.png and 4 more, see OUT/manifest.json"``, or "" when
    nothing was skipped."""
    if not skipped:
        return ""
    names = ", ".join(entry["path"] for entry in skipped[:shown])
    more = (f" and {len(skipped) - shown} more" if len(skipped) > shown
            else "")
    return f": {names}{more}, see {out / manifest_lib.MANIFEST_NAME}"


def _split_summary(data):
    return ", ".join(f"{split} {entry['count']}"
                     for split, entry in data["splits"].items())
