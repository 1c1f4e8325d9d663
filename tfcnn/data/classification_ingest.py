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
  files are converted to 8-bit RGB and stored as JPEG at quality 95, as the
  reference writer does, or with ``lossless`` as PNG (see
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
with a progress bar; the result sums the run up in one line. The shard plan,
the checking and writing loop, the lock, the journal, resuming and the
manifest written last are ``tfcnn.data.ingest_plan``, which segmentation
ingest shares.
"""

import collections
import dataclasses
import functools
import os
import time

from tfcnn.data import image_check
from tfcnn.data import image_folders
from tfcnn.data import ingest_plan
from tfcnn.data import manifest as manifest_lib
from tfcnn.errors import DataError

# Callers of ingest also ask whether an output is complete.
is_complete = ingest_plan.is_complete

def ingest(src, out, *, validation_split=0.1, num_shards=0, seed=0,
           max_pixels=89_478_485, max_side=0, shorter_side=0,
           jpeg_quality=90, raw=False, lossless=False, raw_masks=False,
           workers=0,
           overwrite=False, progress=True):
    """Writes the class folders under ``src`` as TFRecord shards in ``out``.

    ``tfcnn.tasks.ingest`` takes any source and asks each task whether it
    is laid out for it: a source laid out for semantic segmentation (Pascal
    VOC, or ``images/`` and ``masks/`` folders) is written in TF Model
    Garden's segmentation schema instead (``tfcnn.data.segmentation_ingest``),
    with the same guarantees and arguments; class folders come here.

    Args:
        src: str or Path, class folders (``SRC/<class>/*``) or split folders
            (``SRC/train/<class>/*``, optional ``validation/`` and
            ``test/``).
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
        lossless: bool, store images that are not RGB or grey JPEGs as
            PNG (the exact converted pixels, read by ``tf.io.decode_image``)
            instead of JPEG at quality 95 (what the reference schema
            promises and JPEG-only readers need). Segmentation sources are
            always stored lossless. Defaults to False.
        raw_masks: bool, segmentation sources only (``tfcnn.tasks.ingest``):
            True is refused here. Defaults to False.
        workers: int, processes that check and convert images; 0 uses every
            core available to this process, 1 runs in this process. Jobs of
            less than ~16 MB per worker use fewer workers (starting one
            costs about a second). Defaults to 0.
        overwrite: bool, rewrite a complete output. Defaults to False.
        progress: bool, show a progress bar and warnings on stderr.
            Defaults to True.

    Returns:
        ``tfcnn.console.Result``: the manifest dict (the content of
        ``out/manifest.json``) with its result line (``line``), which the
        ``tfcnn ingest`` command prints.

    Raises:
        DataError: ``src`` has no class folders, ``out`` is inside ``src``,
            an argument is out of range, or ``out`` holds a complete ingest
            of other files or options and ``overwrite`` is False.
    """
    storage = storage_options(max_side, shorter_side, jpeg_quality, raw,
                              lossless)
    if raw_masks:
        raise DataError(f"raw_masks is for segmentation sources (images "
                        f"with masks); {src} holds class folders. Received: "
                        "raw_masks=True")
    started = time.perf_counter()
    tree = image_folders.find_images(src)
    out = ingest_plan.check_arguments(tree, out, workers, max_pixels)
    shards = _plan(tree, validation_split, num_shards, seed)
    options = {"validation_split": validation_split,
               "num_shards": num_shards, "seed": seed,
               "max_pixels": max_pixels}
    if storage != image_check.Storage():
        # Only when set, so the fingerprints of earlier ingests still match.
        options.update(dataclasses.asdict(storage))
    return ingest_plan.write_plan(
        out, shards, options, tree.num_files,
        write_shards=lambda out, pending, bar, journal: _write_shards(
            tree, out, pending, max_pixels, storage, workers, bar, journal),
        manifest_data=lambda shards, results, fingerprint: _manifest_data(
            tree, shards, results, options, fingerprint, storage),
        overwrite=overwrite, progress=progress, started=started)


# Planning ------------------------------------------------------------------

def storage_options(max_side, shorter_side, jpeg_quality, raw, lossless):
    """Checks the storage arguments (``ingest``'s); returns an
    ``image_check.Storage``."""
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
                               bool(raw), bool(lossless))


def _plan(tree, validation_split, num_shards, seed):
    splits = dict(tree.splits)
    if tree.has_validation_folder:
        image_folders.check_fraction(validation_split)
    else:
        splits[image_folders.TRAIN], splits[image_folders.VALIDATION] = (
            image_folders.split_validation(
                splits[image_folders.TRAIN], validation_split, seed))
    return ingest_plan.plan_shards(splits, num_shards, seed)


# Writing -------------------------------------------------------------------

def _write_shards(tree, out, shards, max_pixels, storage, workers, bar,
                  journal):
    """Checks the files of ``shards`` in parallel and writes each shard
    (``tfcnn.data.ingest_plan.write_shards``); yields ``(shard, result)``
    after each shard is published."""
    from tfcnn.data import features

    labels = {name: i for i, name in enumerate(tree.class_names)}
    files = [f for s in shards for f in s.files]
    check = functools.partial(image_check.check_images,
                              max_pixels=max_pixels, storage=storage)
    checked = ingest_plan.check_in_order(
        check, [str(tree.root / f.relpath) for f in files],
        ingest_plan.worker_count(workers, files), image_check.CheckedImage)

    def add_record(f, image, result):
        counts, formats = result["class_counts"], result["formats"]
        counts[f.class_name] = counts.get(f.class_name, 0) + 1
        formats[image.image_format] = formats.get(image.image_format, 0) + 1
        result["resized"] += image.resized
        shape = (image.height, image.width)
        if (image.image_format == image_check.RAW
                and shape not in result["raw_shapes"]):
            # Two shapes tell that raw records differ; keep no more.
            result["raw_shapes"] = sorted(result["raw_shapes"] + [shape])[:2]
        return features.make_example(
            image.encoded, image_format=image.image_format,
            height=image.height, width=image.width,
            label=labels[f.class_name],
            # fsencode: names that are not valid UTF-8 keep their bytes
            # instead of failing to encode.
            text=os.fsencode(f.class_name),
            filename=os.fsencode(f.relpath)).SerializeToString(
                # Map entries in key order: the same source gives the same
                # shard bytes (and sha256) in every process.
                deterministic=True)

    return ingest_plan.write_shards(
        out, shards, checked, bar, journal, add_record=add_record,
        new_result=lambda: {"class_counts": {}, "formats": {}, "resized": 0,
                            "raw_shapes": []})


# Manifest ------------------------------------------------------------------

def _manifest_data(tree, shards, results, options, fingerprint, storage):
    splits, skipped, converted = ingest_plan.sum_results(
        shards, results,
        new_split=lambda: {"class_counts": collections.Counter()},
        add_result=lambda entry, result: entry["class_counts"].update(
            result["class_counts"]))
    formats, resized, raw_shapes = collections.Counter(), 0, set()
    for result in (results[shard.name] for shard in shards):
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
    empty = ingest_plan.empty_validation(
        data, tree.has_validation_folder or options["validation_split"] > 0,
        options["validation_split"], too_few="images per class", item="file")
    return warnings + [empty] if empty else warnings


