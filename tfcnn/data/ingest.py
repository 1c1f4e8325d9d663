"""Image folders to sharded TFRecords in the ImageNet schema.

``ingest(src, out)`` finds the images (``tfcnn.data.image_folders``: class
folders, or train/validation/test folders of class folders), holds out a
stratified validation fraction when there is no validation folder, plans
the shards (``tfcnn.data.sharding``), checks and converts every file in
worker processes (``tfcnn.data.image_check``) and writes
``OUT/<split>-0000K-of-0000N.tfrecord`` plus ``OUT/manifest.json``.

What it guarantees:

- **Every file is accounted for.** A file is either written as one record or
  listed in the manifest's ``skipped`` with its reason (corrupt, truncated,
  empty, not an image, over ``max_pixels``, outside any class folder, ...);
  records written + files skipped = files found. One bad file never stops
  the run, not even one that crashes the native decoder in its worker
  process (``tfcnn.data.worker_pool``).
- **Stored bytes.** RGB and grayscale JPEGs keep their original bytes; other
  files are converted to 8-bit RGB and stored as lossless PNG (see
  ``tfcnn.data.image_check`` for why and for each conversion). Compact
  shards (``max_side`` or ``shorter_side``) store larger images downscaled
  once and re-encoded as JPEG at ``jpeg_quality``; ``raw`` stores 8-bit RGB
  pixels. The manifest's ``storage`` says which, and every reader
  (``tfcnn.data.preprocess.decode_record``) decodes all of them.
- **Determinism.** The validation split and the shard of every file depend
  only on the file list and ``seed``, not on ``workers`` or timing.
- **Nothing half-written.** Shards are written under hidden temporary names
  and renamed when complete; each finished shard is recorded in a journal
  (``OUT/.ingest-journal.jsonl``). An ingest that is killed and run again
  keeps the shards it finished, removes temporaries and strays, and writes
  the rest: no duplicates. ``manifest.json`` is written last, so its
  presence means the output is complete. A complete output is never
  rewritten unless ``overwrite=True``. An advisory lock
  (``OUT/.ingest.lock``) keeps two ingests from writing one folder.

Files are checked by all cores (spawned worker processes, chunks of 16
files, results consumed in order by this process, which writes the shards)
with a progress bar; the run ends with one summary line.
"""

import collections
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from tfcnn import atomic_files
from tfcnn.data import image_check
from tfcnn.data import image_folders
from tfcnn.data import manifest as manifest_lib
from tfcnn.data import segmentation_folders
from tfcnn.data import sharding
from tfcnn.data import worker_pool
from tfcnn.errors import DataError

JOURNAL_NAME = ".ingest-journal.jsonl"
LOCK_NAME = ".ingest.lock"
# Files per task sent to a worker process: large enough to amortise the
# inter-process round trip, small enough to keep all workers busy.
_CHUNK = 16
_INFLIGHT_PER_WORKER = 4
# Starting a worker process costs about a second (a fresh interpreter that
# imports NumPy and Pillow), about what one core takes to check ~16 MB of
# JPEGs; smaller jobs are checked in this process.
_MIN_BYTES_PER_WORKER = 16 * 2**20


class _Shard:
    """One planned shard: its split, name and files in write order."""

    def __init__(self, split, index, num_shards, files):
        self.split = split
        self.name = sharding.shard_filename(split, index, num_shards)
        self.files = files


def ingest(src, out, *, validation_split=0.1, num_shards=0, seed=0,
           max_pixels=89_478_485, max_side=0, shorter_side=0,
           jpeg_quality=90, raw=False, workers=0, overwrite=False,
           progress=True):
    """Writes the images under ``src`` as TFRecord shards in ``out``.

    A source laid out for semantic segmentation (Pascal VOC, or
    ``images/`` and ``masks/`` folders) is written in TF Model Garden's
    segmentation schema instead (``tfcnn.data.segmentation_ingest``), with
    the same guarantees and arguments.

    Args:
        src: str or Path, class folders (``SRC/<class>/*``) or split folders
            (``SRC/train/<class>/*``, optional ``validation/`` and ``test/``),
            or a segmentation source (``tfcnn.data.segmentation_folders``).
        out: str or Path, output folder (created); must not lie inside
            ``src``.
        validation_split: float in [0, 1), the stratified fraction of each
            training class held out as the validation split when ``src``
            has no validation folder. Defaults to 0.1.
        num_shards: int, shards per split; 0 picks one per ~128 MB of
            source data. Capped at the split's file count. Defaults to 0.
        seed: int, seeds the validation split and the shard assignment.
            Defaults to 0.
        max_pixels: int, images with more pixels are skipped before decoding
            (decompression bombs). Defaults to 89,478,485 (Pillow's limit).
        max_side: int, store images whose longer side exceeds it
            downscaled to it (compact shards); 0: no limit. Defaults to 0.
        shorter_side: int, store images whose shorter side exceeds it
            downscaled to it (compact shards: 256 for AlexNet's 256
            pipeline); 0: no limit. At most one of ``max_side`` and
            ``shorter_side``. Defaults to 0.
        jpeg_quality: int in [1, 100], the JPEG quality of downscaled
            images. Defaults to 90.
        raw: bool, store 8-bit RGB pixels (``image/format`` ``raw``)
            instead of encoded images: for small images, where decoding
            costs more than reading 3 bytes per pixel. Defaults to False.
            Classification sources only.
        workers: int, processes that check and convert images; 0 uses every
            core available to this process, 1 runs in this process. Jobs of
            less than ~16 MB per worker use fewer workers (starting one
            costs about a second). Defaults to 0.
        overwrite: bool, rewrite a complete output. Defaults to False.
        progress: bool, show a progress bar and print a summary line.
            Defaults to True.

    Returns:
        dict, the manifest (the content of ``out/manifest.json``).

    Raises:
        DataError: ``src`` has no class folders, ``out`` is inside ``src``,
            an argument is out of range, or ``out`` holds a complete ingest
            of other files or options and ``overwrite`` is False.
    """
    storage = _storage(max_side, shorter_side, jpeg_quality, raw)
    if segmentation_folders.is_segmentation_source(src):
        from tfcnn.data import segmentation_ingest

        if storage != image_check.Storage():
            raise DataError(
                "compact and raw storage (max_side, shorter_side, "
                "jpeg_quality, raw) are for classification sources; "
                f"{src} is a segmentation source. Received: {storage}")

        return segmentation_ingest.ingest_segmentation(
            src, out, validation_split=validation_split,
            num_shards=num_shards, seed=seed, max_pixels=max_pixels,
            workers=workers, overwrite=overwrite, progress=progress)
    started = time.perf_counter()
    tree = image_folders.find_images(src)
    out = _check_arguments(tree, out, workers, max_pixels)
    shards = _plan(tree, validation_split, num_shards, seed)
    options = {"validation_split": validation_split,
               "num_shards": num_shards, "seed": seed,
               "max_pixels": max_pixels}
    if storage != image_check.Storage():
        # Only when set, so the fingerprints of earlier ingests still match.
        options.update(dataclasses.asdict(storage))
    return write_plan(
        out, shards, options, tree.num_files,
        write_shards=lambda out, pending, bar, journal: _write_shards(
            tree, out, pending, max_pixels, storage, workers, bar, journal),
        manifest_data=lambda shards, results, fingerprint: _manifest_data(
            tree, shards, results, options, fingerprint, storage),
        overwrite=overwrite, progress=progress, started=started)


def write_plan(out, shards, options, num_files, *, write_shards,
               manifest_data, overwrite, progress, started):
    """Writes planned shards and the manifest, resuming an interrupted run.

    The part of ingest shared by its tasks (classification here,
    segmentation in ``tfcnn.data.segmentation_ingest``): the lock, the
    check for a complete output, the journal of finished shards, the
    removal of stale files, the progress bar, the manifest written last and
    the summary line.

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
        progress: bool, progress bar and summary line.
        started: float, ``time.perf_counter()`` when the ingest began.

    Returns:
        dict, the manifest.
    """
    fingerprint = _fingerprint(shards, options)
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        done = None if overwrite else _existing_output(out, fingerprint)
        if done is not None:
            if progress:
                print(f"ingest: {out} is already complete "
                      f"({_split_summary(done)}); nothing written "
                      "(overwrite=True rewrites it)")
            return done
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
        print(_summary(data, out, len(shards) - len(pending),
                       time.perf_counter() - started))
        for warning in data.get("warnings", []):
            print(f"ingest: warning: {warning}", file=sys.stderr)
    return data


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
            if not _shard_intact(Path(out) / shard["name"], shard,
                                 verify_sha256):
                return False
    return True


# Planning ------------------------------------------------------------------

def _check_arguments(tree, out, workers, max_pixels):
    """Validates the arguments that planning does not; returns ``out``."""
    out = Path(out).expanduser().resolve()
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


def _storage(max_side, shorter_side, jpeg_quality, raw):
    """Checks the storage arguments; returns an ``image_check.Storage``."""
    for name, value in (("max_side", max_side),
                        ("shorter_side", shorter_side)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DataError(
                f"{name} must be an int >= 0 (0: no limit). "
                f"Received: {name}={value!r}")
    if max_side and shorter_side:
        raise DataError(
            "give max_side or shorter_side, not both. Received: "
            f"max_side={max_side}, shorter_side={shorter_side}")
    if (isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int)
            or not 1 <= jpeg_quality <= 100):
        raise DataError(
            "jpeg_quality must be an int in [1, 100]. "
            f"Received: jpeg_quality={jpeg_quality!r}")
    return image_check.Storage(max_side, shorter_side, jpeg_quality,
                               bool(raw))


def _plan(tree, validation_split, num_shards, seed):
    splits = dict(tree.splits)
    if tree.has_validation_folder:
        _check_fraction(validation_split)
    else:
        splits[image_folders.TRAIN], splits[image_folders.VALIDATION] = (
            image_folders.split_validation(
                splits[image_folders.TRAIN], validation_split, seed))
    shards = []
    for split in image_folders.SPLITS:
        files = splits.get(split)
        if not files:
            continue
        count = sharding.num_shards_for(sum(f.size for f in files),
                                        len(files), num_shards)
        for index, members in enumerate(
                sharding.assign_shards(files, count, seed, split)):
            shards.append(_Shard(split, index, count, members))
    return shards


def _check_fraction(fraction):
    if not 0.0 <= fraction < 1.0:
        raise DataError(
            "validation_split must be in [0, 1). "
            f"Received: validation_split={fraction}")


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
    """Holds an advisory lock on ``out`` so two ingests never interleave."""
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
    of other files or options."""
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
        entry.name for entry in os.scandir(out)
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
        try:
            os.remove(out / name)
        except FileNotFoundError:
            pass
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
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"name": name, **result}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self):
        try:
            os.remove(self._path)
        except FileNotFoundError:
            pass


def _json_or_none(line):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


# Writing -------------------------------------------------------------------

def _write_shards(tree, out, shards, max_pixels, storage, workers, bar,
                  journal):
    """Checks the files of ``shards`` in parallel and writes each shard.

    Each shard is recorded in the journal before its rename, so a shard
    under its final name is always in the journal (a kill in between
    leaves a journal entry whose file is missing: that shard is redone).
    Yields ``(shard, result)`` after each shard is published.
    """
    import tensorflow as tf

    from tfcnn.data import features

    labels = {name: i for i, name in enumerate(tree.class_names)}
    files = [f for s in shards for f in s.files]
    workers = min(workers or _available_cores(),
                  sum(f.size for f in files) // _MIN_BYTES_PER_WORKER)
    checked = _check_in_order([str(tree.root / f.relpath) for f in files],
                              max_pixels, storage, workers)
    try:
        for shard in shards:
            final = out / shard.name
            tmp = atomic_files.temporary_path(final)
            counts = collections.Counter()
            formats = collections.Counter()
            raw_shapes = set()
            resized = 0
            skipped, converted = [], []
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for f in shard.files:
                    image = next(checked)
                    bar.update(1)
                    where = {"path": f.relpath, "split": shard.split}
                    if image.skipped:
                        skipped.append({**where,
                                        "reason": image.skip_reason})
                        continue
                    if image.note:
                        converted.append({**where, "note": image.note})
                    writer.write(features.make_example(
                        image.encoded, image_format=image.image_format,
                        height=image.height, width=image.width,
                        label=labels[f.class_name],
                        # fsencode: names that are not valid UTF-8 keep
                        # their bytes instead of failing to encode.
                        text=os.fsencode(f.class_name),
                        filename=os.fsencode(f.relpath)).SerializeToString())
                    counts[f.class_name] += 1
                    formats[image.image_format] += 1
                    resized += image.resized
                    if image.image_format == image_check.RAW:
                        raw_shapes.add((image.height, image.width))
            result = {"records": sum(counts.values()),
                      "class_counts": dict(counts), "skipped": skipped,
                      "converted": converted, "formats": dict(formats),
                      "resized": resized,
                      "raw_shapes": sorted(raw_shapes)[:2]}

            def record(size, digest, name=shard.name, result=result):
                result.update(bytes=size, sha256=digest)
                journal.append(name, result)

            sharding.publish(tmp, final, before_rename=record)
            yield shard, result
    finally:
        checked.close()


def _check_in_order(paths, max_pixels, storage, workers):
    """Yields ``image_check.check_image`` of each path, in order.

    With more than one worker, chunks of paths go to worker processes
    (``tfcnn.data.worker_pool``); a file that kills its worker is skipped.
    """
    if workers <= 1 or len(paths) <= _CHUNK:
        for path in paths:
            yield image_check.check_image(path, max_pixels=max_pixels,
                                          storage=storage)
        return
    yield from worker_pool.map_in_order(
        functools.partial(image_check.check_images, max_pixels=max_pixels,
                          storage=storage),
        (paths[i:i + _CHUNK] for i in range(0, len(paths), _CHUNK)),
        workers=workers, on_crash=_crashed,
        inflight_per_worker=_INFLIGHT_PER_WORKER)


def _crashed(path):
    del path
    return image_check.CheckedImage(
        skip_reason="the image decoder crashed on it (its worker process "
                    "died)")


def _available_cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _progress_bar(total, enabled):
    from tqdm import auto

    return auto.tqdm(total=total, unit="img", desc="ingest",
                     disable=not enabled or not sys.stderr.isatty(),
                     file=sys.stderr, smoothing=0.1)


# Manifest ------------------------------------------------------------------

def _manifest_data(tree, shards, results, options, fingerprint, storage):
    splits, skipped, converted = {}, [], []
    formats, resized, raw_shapes = collections.Counter(), 0, set()
    for shard in shards:
        result = results[shard.name]
        entry = splits.setdefault(shard.split, {
            "count": 0, "class_counts": collections.Counter(), "shards": []})
        entry["count"] += result["records"]
        entry["class_counts"].update(result["class_counts"])
        entry["shards"].append({"name": shard.name,
                                "records": result["records"],
                                "bytes": result["bytes"],
                                "sha256": result["sha256"]})
        skipped.extend(result["skipped"])
        converted.extend(result["converted"])
        formats.update(result.get("formats", {}))
        resized += result.get("resized", 0)
        raw_shapes.update(tuple(s) for s in result.get("raw_shapes", ()))
    for entry in splits.values():
        entry["class_counts"] = {name: entry["class_counts"].get(name, 0)
                                 for name in tree.class_names}
    for f, split, reason in tree.rejected:
        skipped.append({"path": f.relpath, "split": split, "reason": reason})
    data = manifest_lib.assemble(
        source=tree.root,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        options=options, fingerprint=fingerprint,
        files_found=tree.num_files,
        class_names=tree.class_names, label_offset=0, splits=splits,
        skipped=sorted(skipped, key=lambda s: s["path"]),
        converted=sorted(converted, key=lambda s: s["path"]),
        storage={
            "kind": storage.kind, **dataclasses.asdict(storage),
            "formats": dict(sorted(formats.items())), "resized": resized,
            # One shape for every raw image lets the pipeline decode whole
            # batches at once (tfcnn.data.pipeline).
            "raw_shape": (list(raw_shapes.pop())
                          if len(raw_shapes) == 1 else None),
        })
    data["warnings"] = _warnings(data, tree, options)
    return data


def _warnings(data, tree, options):
    """What a user must hear although nothing failed: classes left without
    a training image, a validation split left empty."""
    warnings = []
    train = data["splits"].get(image_folders.TRAIN, {})
    for name, count in train.get("class_counts", {}).items():
        if count == 0:
            warnings.append(
                f"class {name!r} has no usable training image (every file "
                "of it was skipped, see 'skipped'): it cannot be learned")
    wanted = tree.has_validation_folder or options["validation_split"] > 0
    if wanted and not data["splits"].get(image_folders.VALIDATION, {}).get(
            "count"):
        warnings.append(
            "the validation split is empty (too few images per class for "
            f"validation_split={options['validation_split']}, or "
            "every validation file was skipped): training will run without "
            "validation")
    return warnings


def _summary(data, out, resumed, seconds):
    written = sum(s["count"] for s in data["splits"].values())
    shards = sum(len(s["shards"]) for s in data["splits"].values())
    kept = f", {resumed} kept from an interrupted run" if resumed else ""
    return (f"ingest: wrote {written} records in {shards} "
            f"shard{'' if shards == 1 else 's'} ({_split_summary(data)}) to "
            f"{out}; skipped {len(data['skipped'])} of "
            f"{data['files_found']} files{kept} in {seconds:.1f}s")


def _split_summary(data):
    return ", ".join(f"{split} {entry['count']}"
                     for split, entry in data["splits"].items())
