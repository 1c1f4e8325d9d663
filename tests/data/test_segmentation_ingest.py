"""Tests for segmentation ingest: VOC and images/masks folders to shards."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.data import segmentation_files
from tfcnn import cli
from tfcnn import tasks
from tfcnn.data import ingest_plan
from tfcnn.data import segmentation_features as features
from tfcnn.data import segmentation_ingest
from tfcnn.data import segmentation_masks
from tfcnn.data.classification_ingest import is_complete
from tfcnn.data.manifest import Manifest
from tfcnn.errors import DataError

VOID = segmentation_masks.IGNORE_VALUE


def _records(files):
    """Decodes every record the way TF Model Garden's reader does."""
    out = {}
    for record in tf.data.TFRecordDataset([str(f) for f in files]):
        example = tf.io.parse_single_example(record, {
            "image/encoded": tf.io.FixedLenFeature((), tf.string),
            "image/height": tf.io.FixedLenFeature((), tf.int64),
            "image/width": tf.io.FixedLenFeature((), tf.int64),
            "image/segmentation/class/encoded":
                tf.io.FixedLenFeature((), tf.string),
            "image/filename": tf.io.FixedLenFeature((), tf.string)})
        height, width = example["image/height"], example["image/width"]
        mask = tf.io.decode_image(
            example["image/segmentation/class/encoded"], channels=1)
        image = tf.io.decode_image(example["image/encoded"], channels=3)
        out[example["image/filename"].numpy().decode()] = (
            tf.reshape(image, (height, width, 3)).numpy(),
            tf.reshape(mask, (height, width)).numpy())
    return out


def test_voc_layout_to_model_garden_shards(tmp_path):
    src, out = tmp_path / "VOC2012", tmp_path / "shards"
    stems = segmentation_files.make_voc(src)
    # A detection-only JPEG listed nowhere is not part of the dataset.
    Image.new("RGB", (8, 8)).save(src / "JPEGImages" / "2009_000001.jpg")
    data = tasks.ingest(src, out, workers=1, progress=False)

    manifest = Manifest.load(out)
    assert data == manifest.to_dict()
    assert manifest.task == "segmentation"
    assert manifest.ignore_value == VOID
    assert manifest.class_names == list(segmentation_masks.VOC_CLASSES)
    assert manifest.count("train") == 4 and manifest.count("validation") == 2
    assert data["files_found"] == 6 and data["skipped"] == []
    records = _records(manifest.files("train") + manifest.files(
        "validation"))
    assert len(records) == 6
    expected_pixels = np.zeros(256, int)
    for seed, stem in enumerate(stems["train"] + stems["val"]):
        image, mask = records[f"JPEGImages/{stem}.jpg"]
        source = segmentation_files.mask_array(seed, 21)
        np.testing.assert_array_equal(mask, source)  # palette index = id
        assert image.shape == source.shape + (3,)
        if stem in stems["train"]:
            expected_pixels += np.bincount(source.ravel(), minlength=256)
    pixel_counts = manifest.pixel_counts("train")
    assert [pixel_counts[n] for n in manifest.class_names] == (
        expected_pixels[:21].tolist())
    assert data["splits"]["train"]["ignored_pixels"] == expected_pixels[VOID]
    assert is_complete(out)


def test_bad_pairs_are_skipped_and_listed(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    segmentation_files.make_pairs(src, 6, num_classes=3)
    (src / "classes.txt").write_text("background\ncat\ndog\n")
    masks = src / "masks"
    # A mask of another size, an id that is no class, an image without a
    # mask, a mask without an image, a mask that is not an image.
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(masks / "img_000.png")
    Image.fromarray(np.full((24, 32), 7, np.uint8)).save(
        masks / "img_001.png")
    (masks / "img_002.png").unlink()
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(masks / "orphan.png")
    (masks / "img_003.png").write_bytes(b"not a png")
    data = tasks.ingest(src, out, workers=1, progress=False,
                        validation_split=0.0)

    reasons = {s["path"]: s["reason"] for s in data["skipped"]}
    assert set(reasons) == {"images/img_000.png", "images/img_001.png",
                            "images/img_002.png", "masks/orphan.png",
                            "images/img_003.png"}
    assert "mask is 5x5 but the image is 32x24" in reasons[
        "images/img_000.png"]
    assert "mask value 7 is not a class id (< 3)" in reasons[
        "images/img_001.png"]
    assert reasons["images/img_002.png"] == "image without a mask"
    assert reasons["masks/orphan.png"] == "mask without an image"
    # Pillow's message would name a buffer's address (<_io.BytesIO ...>).
    assert reasons["images/img_003.png"] == (
        "mask: not an image (unrecognised format)")
    manifest = Manifest.load(out)
    assert manifest.class_names == ["background", "cat", "dog"]
    # Records written + files skipped = files found.
    assert manifest.count("train") + len(reasons) == data["files_found"] == 7


def test_colour_masks_map_through_the_voc_palette(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    segmentation_files.make_pairs(src, 3, num_classes=3)
    ids = segmentation_files.mask_array(0, 3)
    colours = segmentation_masks.voc_palette()[ids]
    colours[ids == VOID] = segmentation_masks.VOID_COLOUR
    Image.fromarray(colours).save(src / "masks" / "img_000.png")
    off = colours.copy()
    off[5, 5] = (1, 2, 3)
    Image.fromarray(off).save(src / "masks" / "img_001.png")
    data = tasks.ingest(src, out, workers=1, progress=False,
                        validation_split=0.0)

    records = _records(Manifest.load(out).files("train"))
    np.testing.assert_array_equal(records["images/img_000.png"][1], ids)
    assert [c["path"] for c in data["converted"]] == ["images/img_000.png"]
    assert "colour (1, 2, 3) is not in the colour table" in (
        data["skipped"][0]["reason"])
    # Without classes.txt the classes are the ids the masks hold.
    assert data["class_names"] == ["0", "1", "2"]


def test_split_folders_and_seeded_validation(tmp_path):
    src = tmp_path / "src"
    segmentation_files.make_pairs(src, 6, split="train")
    segmentation_files.make_pairs(src, 2, split="val")
    data = tasks.ingest(src, tmp_path / "a", workers=1, progress=False)
    assert {s: e["count"] for s, e in data["splits"].items()} == {
        "train": 6, "validation": 2}

    flat = tmp_path / "flat"
    segmentation_files.make_pairs(flat, 10)
    first = tasks.ingest(flat, tmp_path / "b", workers=1, progress=False,
                         validation_split=0.3, seed=4)
    tasks.ingest(flat, tmp_path / "c", workers=1, progress=False,
                          validation_split=0.3, seed=4)
    assert first["splits"]["validation"]["count"] == 3
    files = [_records(Manifest.load(tmp_path / d).files("validation"))
             for d in ("b", "c")]
    # The same seed holds out the same pairs.
    assert sorted(files[0]) == sorted(files[1])


def test_interrupted_ingest_resumes_without_duplicates(tmp_path,
                                                       monkeypatch):
    src, out = tmp_path / "src", tmp_path / "out"
    segmentation_files.make_pairs(src, 8)
    real = ingest_plan.check_in_order

    def interrupted(*args):
        for i, result in enumerate(real(*args)):
            if i == 5:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(ingest_plan, "check_in_order", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tasks.ingest(src, out, num_shards=4, workers=1, progress=False,
                     validation_split=0.0)
    assert not (out / "manifest.json").exists()
    kept = sorted(p.name for p in out.glob("train-*"))
    assert len(kept) == 2  # two shards of two pairs were finished
    monkeypatch.setattr(ingest_plan, "check_in_order", real)
    data = tasks.ingest(src, out, num_shards=4, workers=1, progress=False,
                        validation_split=0.0)
    records = _records(Manifest.load(out).files("train"))
    assert data["splits"]["train"]["count"] == len(records) == 8
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_worker_processes_write_the_same_shards(tmp_path, monkeypatch):
    src = tmp_path / "src"
    segmentation_files.make_pairs(src, 40)
    one = tasks.ingest(src, tmp_path / "one", workers=1, progress=False)
    # Use the process pool even for these few bytes.
    monkeypatch.setattr(ingest_plan, "MIN_BYTES_PER_WORKER", 1)
    two = tasks.ingest(src, tmp_path / "two", workers=2, progress=False)
    digests = [[s["sha256"] for s in d["splits"]["train"]["shards"]]
               for d in (one, two)]
    assert digests[0] == digests[1]


def test_cli_ingest_and_bad_classes_file(tmp_path, capsys):
    src = tmp_path / "src"
    segmentation_files.make_pairs(src, 4)
    assert cli.main(["ingest", str(src), str(tmp_path / "out"),
                     "--validation-split", "0.25"]) == 0
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["task"] == "segmentation"
    assert manifest["schema"]["features"][features.MASK_ENCODED] == "string"
    (src / "classes.txt").write_text("a\n\nb\n")
    assert cli.main(["ingest", str(src), str(tmp_path / "out2")]) == 2
    assert "classes.txt must name one class per line" in (
        capsys.readouterr().err)
    with pytest.raises(DataError, match="not a segmentation source"):
        segmentation_ingest.ingest_segmentation(tmp_path, tmp_path / "x")


def test_an_empty_validation_split_warns(tmp_path, capsys):
    src = tmp_path / "src"
    segmentation_files.make_pairs(src, 2)
    # A tenth of two pairs holds out none.
    data = tasks.ingest(src, tmp_path / "out", workers=1,
                        validation_split=0.1)
    assert data["splits"]["train"]["count"] == 2
    assert any("too few pairs for validation_split=0.1" in w
               for w in data["warnings"])
    assert "ingest: warning: the validation split is empty" in (
        capsys.readouterr().err)


def test_voc_id_in_two_split_lists_is_refused(tmp_path, capsys):
    src = tmp_path / "voc"
    stems = segmentation_files.make_voc(src, train=3, val=2)
    lists = src / "ImageSets/Segmentation"
    (lists / "val.txt").write_text(
        "".join(s + "\n" for s in stems["val"] + stems["train"][:1]))
    out = tmp_path / "out"
    assert cli.main(["ingest", str(src), str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"tfcnn ingest: error: {lists}: {stems['train'][0]} listed in "
        "both train.txt and "
        "val.txt; an image belongs to one split, so remove it from one "
        "list. Received: 1 shared ids"]
    assert not (out / "manifest.json").exists()


def test_voc_trainval_without_train_list_leaves_val_out_of_train(tmp_path):
    src = tmp_path / "voc"
    stems = segmentation_files.make_voc(src, train=3, val=2)
    lists = src / "ImageSets/Segmentation"
    (lists / "train.txt").rename(lists / "trainval.txt")
    (lists / "trainval.txt").write_text(
        "".join(s + "\n" for s in stems["train"] + stems["val"]))
    data = tasks.ingest(src, tmp_path / "out", workers=1, progress=False)
    assert (data["splits"]["train"]["count"],
            data["splits"]["validation"]["count"]) == (3, 2)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _stored_masks(files):
    """{filename: (mask format, mask bytes, height, width)} of shards."""
    out = {}
    for record in tf.data.TFRecordDataset([str(f) for f in files]):
        example = features.decode(record)
        out[example[features.IMAGE_FILENAME].numpy().decode()] = (
            example[features.MASK_FORMAT].numpy().decode(),
            example[features.MASK_ENCODED].numpy(),
            int(example[features.IMAGE_HEIGHT]),
            int(example[features.IMAGE_WIDTH]))
    return out


def test_default_shards_hold_png_masks_and_say_so(tmp_path):
    src = tmp_path / "src"
    segmentation_files.make_pairs(src, 4)
    tasks.ingest(src, tmp_path / "out", workers=1, progress=False,
                 validation_split=0.0)
    manifest = Manifest.load(tmp_path / "out")
    assert manifest.mask_format == "png"
    assert manifest.storage["mask_format"] == "png"
    stored = _stored_masks(manifest.files("train"))
    assert len(stored) == 4
    for mask_format, encoded, _, _ in stored.values():
        assert mask_format == "png" and encoded.startswith(PNG_SIGNATURE)
    # Model Garden's decoding (decode_image, channels=1) reads them.
    assert len(_records(manifest.files("train"))) == 4


def test_raw_masks_round_trip_exactly(tmp_path):
    src = tmp_path / "src"
    masks = segmentation_files.make_pairs(src, 6, num_classes=5)
    data = tasks.ingest(src, tmp_path / "raw", workers=1, progress=False,
                        validation_split=0.0, raw_masks=True)
    manifest = Manifest.load(tmp_path / "raw")
    assert data["storage"]["mask_format"] == "raw"
    assert manifest.mask_format == "raw"
    assert data["options"]["raw_masks"] is True
    stored = _stored_masks(manifest.files("train"))
    for name, (mask_format, encoded, height, width) in stored.items():
        source = masks[name.split("/")[-1].split(".")[0]]
        assert mask_format == "raw" and len(encoded) == height * width
        np.testing.assert_array_equal(
            np.frombuffer(encoded, np.uint8).reshape(height, width), source)
    # Every reader gives the same masks as from PNG shards.
    from tfcnn.data import segmentation_pipeline

    tasks.ingest(src, tmp_path / "png", workers=1, progress=False,
                 validation_split=0.0)
    png_files = Manifest.load(tmp_path / "png").files("train")
    for read in (segmentation_pipeline.read_segmentation_shards,
                 lambda files: segmentation_pipeline.make_segmentation_dataset(
                     files, resize_size=20, batch_size=2, training=False)):
        raw_out, png_out = (
            [tuple(t.numpy() for t in element) for element in read(files)]
            for files in (manifest.files("train"), png_files))
        assert len(raw_out) == len(png_out) > 0
        for (raw_image, raw_mask), (png_image, png_mask) in zip(
                raw_out, png_out):
            np.testing.assert_array_equal(raw_mask, png_mask)
            np.testing.assert_array_equal(raw_image, png_image)
    # The manifest described from the shards alone reads them too.
    from tfcnn.data import manifest as manifest_lib

    scan = manifest_lib.scan_segmentation_shard(manifest.files("train")[0])
    assert scan.records > 0 and 0 <= scan.max_label < 5


def test_raw_mask_of_the_wrong_size_is_an_error(tmp_path):
    path = tmp_path / "bad.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(features.make_example(
            b"not read", image_format="png", height=4, width=5,
            mask_encoded=bytes(19), mask_format="raw",
            filename="a.png").SerializeToString())
    example = features.decode(next(iter(tf.data.TFRecordDataset(
        str(path)))))
    with pytest.raises(tf.errors.InvalidArgumentError, match="20"):
        features.example_mask(example)


def test_raw_masks_only_for_segmentation_sources(tmp_path, capsys):
    src = tmp_path / "classes"
    for name in ("a", "b"):
        (src / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(src / name / "x.png")
    with pytest.raises(DataError, match="raw_masks is for segmentation"):
        tasks.ingest(src, tmp_path / "out", raw_masks=True)
    assert not (tmp_path / "out").exists()
    pairs = tmp_path / "pairs"
    segmentation_files.make_pairs(pairs, 2)
    assert cli.main(["ingest", str(pairs), str(tmp_path / "seg"),
                     "--raw-masks", "--workers", "1"]) == 0
    assert Manifest.load(tmp_path / "seg").mask_format == "raw"
    with pytest.raises(ValueError, match="mask_format must be one of"):
        segmentation_masks.encode_mask(np.zeros((2, 2), np.uint8), "jpeg")


def test_recipe_key_raw_masks_reaches_ingest(tmp_path):
    pairs = tmp_path / "pairs"
    segmentation_files.make_pairs(pairs, 2)
    recipe = tmp_path / "seg.toml"
    recipe.write_text(f'[data]\npath = "{pairs}"\nraw_masks = true\n'
                      "validation_split = 0.0\n")
    # Without --raw-masks the recipe's key holds; --set overrides it.
    assert cli.main(["ingest", str(recipe), str(tmp_path / "raw"),
                     "--workers", "1"]) == 0
    assert Manifest.load(tmp_path / "raw").mask_format == "raw"
    assert cli.main(["ingest", str(recipe), str(tmp_path / "png"),
                     "--workers", "1", "--set",
                     "data.raw_masks=false"]) == 0
    assert Manifest.load(tmp_path / "png").mask_format == "png"
