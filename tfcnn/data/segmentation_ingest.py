"""Image/mask pairs to TFRecord shards in TF Model Garden's segmentation schema.

``tfcnn.tasks.ingest(src, out)`` hands a source laid out for semantic
segmentation (Pascal VOC, or images/masks folders: see
``tfcnn.data.segmentation_folders``) to ``ingest_segmentation``, which keeps
every guarantee of classification ingest, with the same machinery
(``tfcnn.data.ingest_plan``: shard plan, checks in worker processes, lock,
journal, resume, atomic shard renames, manifest written last): every pair
is written as one record or listed in the manifest's ``skipped`` with its
reason (a bad image, a bad mask, a mask of another size, an id that is no
class, an image without a mask or the reverse), nothing half-written is
ever visible, and a killed run resumes.

Each record holds the image (as classification ingest stores it: a JPEG's
own bytes, anything else as lossless PNG) and its mask as a one-channel
PNG of class ids (``tfcnn.data.segmentation_features``), or with
``raw_masks`` as its raw bytes, which read faster than a PNG decodes and
which Model Garden's decoder does not read; the manifest's
``storage.mask_format`` says which (``"png"`` or ``"raw"``). The manifest
records ``task: "segmentation"``, the ``ignore_value``, and per split the
pixel count of each class (``pixel_counts``), the pixels ignored, and the
number of images showing each class (``class_counts``).
"""

import functools
import time

from tfcnn.data import image_folders
from tfcnn.data import ingest_plan
from tfcnn.data import manifest as manifest_lib
from tfcnn.data import segmentation_features
from tfcnn.data import segmentation_folders
from tfcnn.data import segmentation_masks
from tfcnn.label_values import IGNORE_VALUE

TASK = "segmentation"


def ingest_segmentation(src, out, *, validation_split=0.1, num_shards=0,
                        seed=0, max_pixels=89_478_485, raw_masks=False,
                        workers=0, overwrite=False, progress=True):
    """Writes the image/mask pairs under ``src`` as shards in ``out``.

    Args:
        src: str or Path, a VOC or images/masks folder.
        out: str or Path, output folder (created); not inside ``src``.
        validation_split: float in [0, 1), the seeded random fraction of
            the training pairs held out when ``src`` has no validation
            split. Defaults to 0.1.
        num_shards: int, shards per split; 0 picks one per ~128 MB.
            Defaults to 0.
        seed: int, seeds the validation split and the shard assignment.
            Defaults to 0.
        max_pixels: int, larger images are skipped before decoding.
            Defaults to 89,478,485.
        raw_masks: bool, store each mask as its ``H * W`` bytes of ids
            instead of a PNG: faster to read, larger, and not read by
            Model Garden's decoder. Defaults to False.
        workers: int, checking processes; 0 uses every core, 1 this
            process. Defaults to 0.
        overwrite: bool, rewrite a complete output. Defaults to False.
        progress: bool, progress bar and warnings on stderr. Defaults to
            True.

    Returns:
        ``tfcnn.console.Result``: the manifest dict and its result line.

    Raises:
        DataError: as ``tfcnn.data.classification_ingest.ingest``, or a bad
            ``classes.txt``.
    """
    started = time.perf_counter()
    tree = segmentation_folders.find_pairs(src)
    out = ingest_plan.check_arguments(tree, out, workers, max_pixels)
    shards = _plan(tree, validation_split, num_shards, seed)
    options = {"task": TASK, "validation_split": validation_split,
               "num_shards": num_shards, "seed": seed,
               "max_pixels": max_pixels,
               "class_names": list(tree.class_names or [])}
    mask_format = (segmentation_masks.MASK_RAW if raw_masks
                   else segmentation_masks.MASK_PNG)
    if raw_masks:
        # Only when set, so the fingerprints of earlier ingests still match.
        options["raw_masks"] = True
    return ingest_plan.write_plan(
        out, shards, options, tree.num_files,
        write_shards=lambda out, pending, bar, journal: _write_shards(
            tree, out, pending, max_pixels, mask_format, workers, bar,
            journal),
        manifest_data=lambda shards, results, fingerprint: _manifest_data(
            tree, shards, results, options, fingerprint, mask_format),
        overwrite=overwrite, progress=progress, started=started)


def _plan(tree, validation_split, num_shards, seed):
    splits = dict(tree.splits)
    image_folders.check_fraction(validation_split)
    if not tree.has_validation:
        # One stratum: a pair shows several classes, so there is no class
        # to stratify by; the seeded choice is that of classification.
        held = [image_folders.SourceFile(p.relpath, "", p.size)
                for p in splits.get(segmentation_folders.TRAIN, [])]
        by_path = {p.relpath: p for p in splits.get(
            segmentation_folders.TRAIN, [])}
        train, validation = image_folders.split_validation(
            held, validation_split, seed)
        splits[segmentation_folders.TRAIN] = [by_path[f.relpath]
                                              for f in train]
        splits[segmentation_folders.VALIDATION] = [by_path[f.relpath]
                                                   for f in validation]
    return ingest_plan.plan_shards(splits, num_shards, seed)


def _write_shards(tree, out, shards, max_pixels, mask_format, workers, bar,
                  journal):
    """Checks the pairs of ``shards`` in parallel and writes each shard
    (``tfcnn.data.ingest_plan.write_shards``); yields ``(shard, result)``
    once it is published."""
    num_classes = len(tree.class_names) if tree.class_names else None
    pairs = [p for s in shards for p in s.files]
    check = functools.partial(segmentation_masks.check_pairs,
                              num_classes=num_classes, max_pixels=max_pixels,
                              mask_format=mask_format)
    checked = ingest_plan.check_in_order(
        check, [(str(tree.root / p.relpath), str(tree.root / p.mask_relpath))
                for p in pairs],
        ingest_plan.worker_count(workers, pairs),
        segmentation_masks.CheckedPair)

    def add_record(pair, checked_pair, result):
        for value, count in enumerate(checked_pair.histogram):
            result["histogram"][value] += count
            result["images_with"][value] += count > 0
        image = checked_pair.image
        return segmentation_features.make_example(
            image.encoded, image_format=image.image_format,
            height=image.height, width=image.width,
            mask_encoded=checked_pair.mask_encoded,
            mask_format=mask_format,
            filename=pair.relpath).SerializeToString(
                deterministic=True)  # byte-identical shards on re-ingest

    return ingest_plan.write_shards(
        out, shards, checked, bar, journal, add_record=add_record,
        new_result=lambda: {"histogram": [0] * 256,
                            "images_with": [0] * 256})


def _manifest_data(tree, shards, results, options, fingerprint,
                   mask_format):
    def add_result(entry, result):
        for value in range(256):
            entry["histogram"][value] += result["histogram"][value]
            entry["images_with"][value] += result["images_with"][value]

    totals, skipped, converted = ingest_plan.sum_results(
        shards, results, add_result=add_result,
        new_split=lambda: {"histogram": [0] * 256, "images_with": [0] * 256})
    class_names = list(tree.class_names or _names_from_ids(totals))
    splits = {}
    for split, entry in totals.items():
        splits[split] = {
            "count": entry["count"],
            "class_counts": {name: entry["images_with"][i]
                             for i, name in enumerate(class_names)},
            "pixel_counts": {name: entry["histogram"][i]
                             for i, name in enumerate(class_names)},
            "ignored_pixels": entry["histogram"][IGNORE_VALUE],
            "shards": entry["shards"]}
    for relpath, split, reason in tree.rejected:
        skipped.append({"path": relpath, "split": split, "reason": reason})
    data = manifest_lib.assemble(
        task=TASK, source=tree.root, layout=tree.layout.value,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        schema=segmentation_features.schema_description(),
        options=options, fingerprint=fingerprint,
        class_names=class_names, label_offset=0,
        ignore_value=IGNORE_VALUE, files_found=tree.num_files,
        storage={"kind": "original", "mask_format": mask_format},
        splits=splits, skipped=sorted(skipped, key=lambda s: s["path"]),
        converted=sorted(converted, key=lambda s: s["path"]))
    data["warnings"] = _warnings(data, tree, options)
    return data


def _warnings(data, tree, options):
    """Classes no training pixel shows; a validation split left empty."""
    warnings = []
    train = data["splits"].get(segmentation_folders.TRAIN, {})
    for name, count in train.get("pixel_counts", {}).items():
        if count == 0:
            warnings.append(
                f"class {name!r} has no pixel in the training masks: it "
                "cannot be learned")
    empty = ingest_plan.empty_validation(
        data, tree.has_validation or options["validation_split"] > 0,
        options["validation_split"], too_few="pairs", item="pair")
    return warnings + [empty] if empty else warnings


def _names_from_ids(totals):
    """Class names "0".."k" up to the largest id any mask holds."""
    largest = max((value for entry in totals.values()
                   for value in range(IGNORE_VALUE)
                   if entry["histogram"][value]), default=0)
    return [str(i) for i in range(largest + 1)]

