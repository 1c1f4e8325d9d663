"""Tests for tfcnn.data.classification_ingest: class folders to shards,
bad files, resumption."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.data import image_files
from tfcnn.data import features
from tfcnn.data import ingest_plan
from tfcnn.data.classification_ingest import ingest
from tfcnn.data.classification_ingest import is_complete
from tfcnn.data.manifest import Manifest
from tfcnn.errors import DataError

CLASSES = ("ant", "bee", "cat")


def _make_folders(root, per_class=10, kinds=("rgb_jpeg",)):
    return image_files.make_class_folders(root, CLASSES, per_class, kinds)


def _records(files):
    parsed = []
    for record in tf.data.TFRecordDataset([str(f) for f in files]):
        example = tf.io.parse_single_example(record, features.FEATURE_SPEC)
        parsed.append({key: value.numpy() for key, value in example.items()})
    return parsed


def _shard_digests(out):
    manifest = Manifest.load(out)
    return {s: [shard["sha256"] for shard in manifest.shards(s)]
            for s in manifest.splits}


def test_class_folders_to_shards(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    paths = _make_folders(src, per_class=10)
    data = ingest(src, out, num_shards=2, workers=1, progress=False)

    manifest = Manifest.load(out)
    assert data == manifest.to_dict()
    assert manifest.class_names == list(CLASSES)
    assert manifest.count("train") == 27 and manifest.count("validation") == 3
    # Stratified: one image of each class held out (round(0.1 * 10)).
    assert manifest.class_counts("validation") == {c: 1 for c in CLASSES}
    assert [Path(f).name for f in manifest.files("train")] == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    records = _records(manifest.files("train") + manifest.files("validation"))
    assert sorted(r[features.IMAGE_FILENAME].decode() for r in records) == (
        sorted(paths))
    for r in records:
        rel = r[features.IMAGE_FILENAME].decode()
        # JPEGs are stored as their original bytes.
        assert r[features.IMAGE_ENCODED] == (src / rel).read_bytes()
        assert r[features.IMAGE_FORMAT] == b"jpeg"
        assert CLASSES[r[features.LABEL]] == rel.split("/")[0]
        assert r[features.LABEL_TEXT].decode() == rel.split("/")[0]
        assert (r[features.IMAGE_HEIGHT], r[features.IMAGE_WIDTH]) == (
            image_files.HEIGHT, image_files.WIDTH)
    for split in manifest.splits:
        for shard in manifest.shards(split):
            assert shard["records"] == len(_records([out / shard["name"]]))
    assert is_complete(out)
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_every_bad_file_kind_is_converted_or_listed(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    kinds = sorted(image_files.GOOD_KINDS) + sorted(image_files.BAD_KINDS)
    for i, kind in enumerate(kinds):
        cls = CLASSES[i % 2]
        image_files.write_kind(
            src / cls / f"{kind}{image_files.extension(kind)}", kind, seed=i)
    data = ingest(src, out, validation_split=0.0, lossless=True,
                  workers=1, progress=False)

    assert data["storage"]["lossless"] is True
    written = sum(split["count"] for split in data["splits"].values())
    assert data["files_found"] == len(kinds)
    assert written + len(data["skipped"]) == data["files_found"]
    reasons = {Path(s["path"]).stem: s["reason"] for s in data["skipped"]}
    assert set(reasons) == set(image_files.BAD_KINDS)
    for kind, word in image_files.BAD_KINDS.items():
        assert word in reasons[kind]
    converted = {Path(c["path"]).stem for c in data["converted"]}
    assert converted == {k for k, keep in image_files.GOOD_KINDS.items()
                         if not keep}
    for r in _records(Manifest.load(out).files("train")):
        kind = Path(r[features.IMAGE_FILENAME].decode()).stem
        image = tf.io.decode_image(r[features.IMAGE_ENCODED], channels=3,
                                   expand_animations=False).numpy()
        assert image.shape == (image_files.HEIGHT, image_files.WIDTH, 3)
        if not image_files.GOOD_KINDS[kind]:
            atol = 1 if kind in ("rgba_png", "la_png") else 0
            np.testing.assert_allclose(
                image.astype(int),
                image_files.expected_pixels(kind, seed=kinds.index(kind)),
                atol=atol, rtol=0)


def _model_garden_jpeg_decode(encoded):
    """TF Model Garden's classification Parser with its default
    ``decode_jpeg_only=True``: the shape from the JPEG header, then a fused
    crop-and-decode of the centre window (``center_crop_image_v2``)."""
    shape = tf.image.extract_jpeg_shape(encoded)
    side = tf.minimum(shape[0], shape[1])
    window = tf.stack([(shape[0] - side) // 2, (shape[1] - side) // 2,
                       side, side])
    return tf.image.decode_and_crop_jpeg(encoded, window, channels=3)


def test_every_record_of_a_mixed_folder_reads_as_jpeg(tmp_path, capsys):
    """By default every record is a JPEG, as the reference schema says, so
    JPEG-only readers decode all of them; --lossless keeps PNG."""
    from tfcnn import cli

    src = tmp_path / "src"
    kinds = sorted(image_files.GOOD_KINDS)
    for i, kind in enumerate(kinds * 2):
        image_files.write_kind(
            src / CLASSES[i % 3] / f"{i}{image_files.extension(kind)}",
            kind, seed=i)
    assert cli.main(["ingest", str(src), str(tmp_path / "out"),
                     "--workers", "1"]) == 0
    manifest = Manifest.load(tmp_path / "out")
    records = _records(manifest.files("train")
                       + manifest.files("validation"))
    assert len(records) == 2 * len(kinds)
    for r in records:
        assert r[features.IMAGE_FORMAT] == b"jpeg"
        image = _model_garden_jpeg_decode(r[features.IMAGE_ENCODED])
        assert image.shape == (image_files.HEIGHT, image_files.HEIGHT, 3)
    assert manifest.storage["lossless"] is False
    assert manifest.storage["formats"] == {"jpeg": 2 * len(kinds)}

    assert cli.main(["ingest", str(src), str(tmp_path / "lossless"),
                     "--workers", "1", "--lossless"]) == 0
    lossless = Manifest.load(tmp_path / "lossless")
    assert lossless.storage["lossless"] is True
    png = [r for r in _records(lossless.files("train")
                               + lossless.files("validation"))
           if r[features.IMAGE_FORMAT] == b"png"]
    assert len(png) == 2 * sum(not k.endswith("jpeg") or not keep
                               for k, keep in image_files.GOOD_KINDS.items())
    with pytest.raises(tf.errors.InvalidArgumentError):
        _model_garden_jpeg_decode(png[0][features.IMAGE_ENCODED])


def test_split_folders_and_unknown_test_class(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src / "train", per_class=5)
    for name in ("ant", "zebra"):
        image_files.write_kind(src / "test" / name / "0.jpg", "rgb_jpeg")
    data = ingest(src, out, validation_split=0.2, workers=1,
                  progress=False)
    manifest = Manifest.load(out)
    assert manifest.class_names == list(CLASSES)
    assert (manifest.count("train"), manifest.count("validation"),
            manifest.count("test")) == (12, 3, 1)
    assert [s["path"] for s in data["skipped"]] == ["test/zebra/0.jpg"]
    assert "no training folder" in data["skipped"][0]["reason"]


def test_validation_folder_is_used_as_is(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src / "train", per_class=4)
    _make_folders(src / "validation", per_class=2)
    ingest(src, out, workers=1, progress=False)
    manifest = Manifest.load(out)
    assert (manifest.count("train"), manifest.count("validation")) == (12, 6)
    assert not manifest.has_split("test")


def test_deterministic_for_a_seed_and_any_worker_count(tmp_path,
                                                      monkeypatch):
    src = tmp_path / "src"
    _make_folders(src, per_class=24)  # 72 files: more than one pool chunk
    # Use the process pool even for these few bytes.
    monkeypatch.setattr(ingest_plan, "MIN_BYTES_PER_WORKER", 1)
    ingest(src, tmp_path / "a", num_shards=3, seed=7, workers=1,
           progress=False)
    ingest(src, tmp_path / "b", num_shards=3, seed=7, workers=2,
           progress=False)
    ingest(src, tmp_path / "c", num_shards=3, seed=8, workers=1,
           progress=False)
    assert _shard_digests(tmp_path / "a") == _shard_digests(tmp_path / "b")
    assert _shard_digests(tmp_path / "a") != _shard_digests(tmp_path / "c")


def test_complete_output_is_not_rewritten(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=3)
    ingest(src, out, workers=1, progress=False)
    shard = Manifest.load(out).files("train")[0]
    before = os.stat(shard).st_mtime_ns
    line = ingest(src, out, workers=1).line
    assert "already complete" in line and "(overwrite=True rewrites" in line
    assert capsys.readouterr().out == ""
    assert os.stat(shard).st_mtime_ns == before

    with pytest.raises(DataError, match="overwrite"):
        ingest(src, out, seed=1, workers=1, progress=False)
    ingest(src, out, seed=1, workers=1, overwrite=True,
           progress=False)
    assert Manifest.load(out).to_dict()["options"]["seed"] == 1


def test_damaged_output_is_rewritten(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=3)
    ingest(src, out, workers=1, progress=False)
    shard = Path(Manifest.load(out).files("train")[0])
    shard.write_bytes(shard.read_bytes()[:-10])
    assert not is_complete(out)
    ingest(src, out, workers=1, progress=False)
    assert is_complete(out)


def test_is_complete_false_without_manifest_or_shard(tmp_path):
    assert not is_complete(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=3)
    ingest(src, out, workers=1, progress=False)
    os.remove(Manifest.load(out).files("train")[0])
    assert not is_complete(out)


def test_stale_shards_and_temporaries_are_removed(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=3)
    out.mkdir()
    # A shard of an earlier plan, recorded in that plan's journal.
    (out / "train-00000-of-00009.tfrecord").write_bytes(b"old plan")
    (out / ingest_plan.JOURNAL_NAME).write_text(
        '{"fingerprint": "an earlier plan"}\n'
        '{"name": "train-00000-of-00009.tfrecord", "records": 1}\n')
    (out / ".train-00000-of-00001.tfrecord.tmp").write_bytes(b"partial")
    (out / "notes.txt").write_text("not ours")
    ingest(src, out, workers=1, progress=False)
    assert sorted(os.listdir(out)) == [
        "manifest.json", "notes.txt", "train-00000-of-00001.tfrecord"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_other_tools_shards_are_never_deleted(tmp_path, overwrite):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=3)
    out.mkdir()
    theirs = out / "train-00000-of-01024"
    theirs.write_bytes(b"another tool's records")
    with pytest.raises(DataError, match="train-00000-of-01024.*no tfcnn "
                                        "ingest wrote"):
        ingest(src, out, workers=1, progress=False,
               overwrite=overwrite)
    assert theirs.read_bytes() == b"another tool's records"
    assert sorted(os.listdir(out)) == ["train-00000-of-01024"]


def test_overwrite_replaces_only_its_own_shards(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=3)
    ingest(src, out, num_shards=2, workers=1, progress=False)
    ingest(src, out, num_shards=1, workers=1, overwrite=True,
           progress=False)
    assert sorted(os.listdir(out)) == [
        "manifest.json", "train-00000-of-00001.tfrecord"]


@pytest.mark.parametrize("kwargs, match", [
    ({"validation_split": 1.0}, "validation_split"),
    ({"workers": -1}, "workers"),
    ({"max_pixels": 0}, "max_pixels"),
    ({"num_shards": -2}, "num_shards"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    _make_folders(tmp_path / "src", per_class=2)
    with pytest.raises((DataError, ValueError), match=match):
        ingest(tmp_path / "src", tmp_path / "out", progress=False,
               **kwargs)


def test_file_names_that_are_not_utf8(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=1)
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes, invalid UTF-8
    image_files.write_kind(src / "ant" / name, "rgb_jpeg")
    data = ingest(src, out, workers=1, progress=False)
    assert data["splits"]["train"]["count"] == 4
    filenames = {r[features.IMAGE_FILENAME]
                 for r in _records(Manifest.load(out).files("train"))}
    assert b"ant/caf\xe9.jpg" in filenames
    assert is_complete(out)


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match="source folder not found"):
        ingest(tmp_path / "nope", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        ingest(tmp_path / "empty", tmp_path / "out", progress=False)
    _make_folders(tmp_path / "src", per_class=1)
    with pytest.raises(DataError, match="inside src"):
        ingest(tmp_path / "src", tmp_path / "src" / "out",
               progress=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="not a folder"):
        ingest(tmp_path / "src", tmp_path / "file", progress=False)


def test_summary_line_names_what_was_written(tmp_path, capsys):
    _make_folders(tmp_path / "src", per_class=2)
    image_files.write_kind(tmp_path / "src" / "ant" / "x.jpg", "zero_byte")
    line = ingest(tmp_path / "src", tmp_path / "out", workers=1).line
    assert capsys.readouterr().out == ""
    assert "wrote 6 records in 1 shard (train 6)" in line
    assert "skipped 1 of 7 files" in line
    assert line.endswith(
        f": ant/x.jpg, see {tmp_path / 'out' / 'manifest.json'}")
    assert str(tmp_path / "out") in line
    for i in range(4):
        image_files.write_kind(tmp_path / "src" / "bee" / f"bad{i}.jpg",
                               "truncated_jpeg")
    line = ingest(tmp_path / "src", tmp_path / "out", workers=1,
                  overwrite=True).line
    assert "skipped 5 of 11 files" in line
    assert line.endswith(
        ": ant/x.jpg, bee/bad0.jpg, bee/bad1.jpg and 2 more, see "
        f"{tmp_path / 'out' / 'manifest.json'}")


_KILLED_INGEST = textwrap.dedent("""
    import sys
    from tfcnn.data.classification_ingest import ingest
    from tfcnn.data.classification_ingest import is_complete
    ingest(sys.argv[1], sys.argv[2], num_shards=40, workers=1,
           validation_split=0.0, progress=False)
""")


@pytest.mark.slow
def test_killed_ingest_resumes_without_duplicates(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    # RGBA PNGs are converted and re-encoded: slow enough to kill mid-way.
    paths = _make_folders(src, per_class=100, kinds=("rgba_png",))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_INGEST, str(src), str(out)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if len(list(out.glob("train-*"))) >= 2:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "ingest ended before kill"
    assert not (out / "manifest.json").exists()
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("train-*")}
    assert 2 <= len(kept) < 40

    data = ingest(src, out, num_shards=40, workers=1,
                  validation_split=0.0, progress=False)
    assert is_complete(out)
    manifest = Manifest.load(out)
    names = [r[features.IMAGE_FILENAME].decode()
             for r in _records(manifest.files("train"))]
    assert len(names) == len(set(names)) == len(paths) == data["splits"][
        "train"]["count"]
    assert set(names) == set(paths)
    assert sorted(os.listdir(out)) == sorted(
        ["manifest.json"] + [Path(f).name for f in manifest.files("train")])
    # Shards finished before the kill were kept, not rewritten.
    for name, mtime in kept.items():
        assert (out / name).stat().st_mtime_ns == mtime


def test_cli_ingest_and_stats(tmp_path, capsys):
    from tfcnn import cli

    _make_folders(tmp_path / "src", per_class=2)
    out = tmp_path / "out"
    assert cli.main(["ingest", str(tmp_path / "src"), str(out),
                     "--num-shards", "1", "--workers", "1"]) == 0
    assert cli.main(["stats", str(out), "--resize-size", "8"]) == 0
    lines = capsys.readouterr().out
    assert "wrote 6 records" in lines and "stats.npz" in lines
    assert json.loads((out / "manifest.json").read_text())["stats"] == (
        "stats.npz")
    assert cli.main(["stats", str(tmp_path / "nowhere")]) == 2


def test_concurrent_ingest_into_one_folder_is_refused(tmp_path):
    import fcntl

    _make_folders(tmp_path / "src", per_class=2)
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ingest_plan.LOCK_NAME, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DataError, match="another ingest is writing"):
            ingest(tmp_path / "src", out, workers=1, progress=False)
    ingest(tmp_path / "src", out, workers=1, progress=False)
    assert not (out / ingest_plan.LOCK_NAME).exists()


def test_unreadable_folder_is_listed_as_skipped(tmp_path, monkeypatch):
    # Tests run as root, which ignores permission bits, so the listing is
    # refused by a stand-in for os.scandir (what os.walk calls).
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=10)
    hidden = src / "bee" / "more"
    image_files.write_kind(hidden / "x.jpg", "rgb_jpeg")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(hidden):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    data = ingest(src, out, workers=1, progress=False)
    reasons = {s["path"]: s["reason"] for s in data["skipped"]}
    assert "cannot list this folder (Permission denied)" in reasons[
        "bee/more/"]
    written = sum(s["count"] for s in data["splits"].values())
    assert written + len(data["skipped"]) == data["files_found"]


def test_symlink_loop_is_listed_as_skipped(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=10)
    (src / "ant" / "loop").symlink_to(src / "ant", target_is_directory=True)
    linked = tmp_path / "elsewhere"
    image_files.write_kind(linked / "y.jpg", "rgb_jpeg")
    (src / "cat" / "linked").symlink_to(linked, target_is_directory=True)
    data = ingest(src, out, workers=1, progress=False)
    reasons = {s["path"]: s["reason"] for s in data["skipped"]}
    assert "link to a folder of the source tree" in reasons["ant/loop/"]
    # A link to a folder outside the tree is followed, once.
    assert data["splits"]["train"]["class_counts"]["cat"] + data["splits"][
        "validation"]["class_counts"]["cat"] == 11
    written = sum(s["count"] for s in data["splits"].values())
    assert written + len(data["skipped"]) == data["files_found"]


def test_link_to_the_source_root_stores_no_file_twice(tmp_path):
    """``ln -s .. SRC/2/loop`` would file classes 0 and 1 again under 2,
    one file in train as 0 and in validation as 2."""
    src, out = tmp_path / "src", tmp_path / "out"
    image_files.make_class_folders(src, ("0", "1", "2"), 10)
    os.symlink("..", src / "2" / "loop")
    twin = tmp_path / "twin"
    os.symlink(src, twin)  # and a link to an ancestor, through another path
    os.symlink(twin, src / "1" / "up")
    data = ingest(src, out, workers=1, progress=False)
    names = [r[features.IMAGE_FILENAME].decode()
             for r in _records(Manifest.load(out).files("train")
                               + Manifest.load(out).files("validation"))]
    assert len(names) == 30
    assert not [n for n in names if "/loop/" in n or "/up/" in n]
    reasons = {s["path"]: s["reason"] for s in data["skipped"]}
    assert set(reasons) == {"2/loop/", "1/up/"}
    assert all("link to a folder of the source tree" in r
               for r in reasons.values())


def test_split_leaving_a_class_without_training_images_is_refused(
        tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=20)
    with pytest.raises(DataError, match=(
            r"validation_split=0.99 holds out all 20 files of class 'ant', "
            r"leaving it no training image")):
        ingest(src, out, validation_split=0.99, workers=1,
               progress=False)
    assert not (out / "manifest.json").exists()


def test_class_folder_without_files_is_an_error(tmp_path):
    src = tmp_path / "src"
    _make_folders(src, per_class=3)
    (src / "dog").mkdir()
    with pytest.raises(DataError, match="dog has no files"):
        ingest(src, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_class_without_usable_images_and_empty_validation_warn(tmp_path,
                                                               capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    _make_folders(src, per_class=3)
    image_files.write_kind(src / "dog" / "bad.jpg", "truncated_jpeg")
    data = ingest(src, out, workers=1)
    err = capsys.readouterr().err
    assert any("'dog' has no usable training image" in w
               for w in data["warnings"])
    assert any("validation split is empty" in w for w in data["warnings"])
    assert "ingest: warning: class 'dog' has no usable" in err
    assert Manifest.load(out).to_dict()["warnings"] == data["warnings"]


# Compact and raw shards ----------------------------------------------------

def _photo_folders(root, sizes, fmt="jpg"):
    """Smooth photo-like images of the given (width, height), 2 classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i, (width, height) in enumerate(sizes):
        y, x = np.mgrid[0:height, 0:width] / max(width, height)
        f = rng.uniform(0.5, 3.0, (3, 3))
        pixels = np.stack([127.5 + 100 * np.sin(
            2 * np.pi * (a * x + b * y) + c) for a, b, c in f], -1)
        rel = f"{CLASSES[i % 2]}/{i:03d}.{fmt}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.round().astype(np.uint8)).save(
            root / rel, quality=95)
        paths.append(rel)
    return paths


def test_compact_ingest_from_the_command_line(tmp_path, capsys):
    from tfcnn import cli

    src, out = tmp_path / "src", tmp_path / "out"
    sizes = [(120, 90), (90, 120), (40, 30), (200, 100)] * 3
    _photo_folders(src, sizes)
    argv = ["ingest", str(src), str(out), "--shorter-side", "48",
            "--jpeg-quality", "85", "--workers", "1"]
    assert cli.main(argv) == 0
    manifest = Manifest.load(out)
    storage = manifest.storage
    assert storage["kind"] == "compact" and storage["shorter_side"] == 48
    assert storage["jpeg_quality"] == 85
    # The 40x30 images are already small: kept as they are.
    assert storage["resized"] == 9 and storage["formats"] == {"jpeg": 12}
    assert manifest.raw_shape is None
    for r in _records(manifest.files("train") + manifest.files("validation")):
        source = src / r[features.IMAGE_FILENAME].decode()
        shape = tf.io.decode_jpeg(r[features.IMAGE_ENCODED]).shape
        assert (r[features.IMAGE_HEIGHT], r[features.IMAGE_WIDTH]) == (
            shape[0], shape[1])
        if min(shape[:2]) == 30:
            assert r[features.IMAGE_ENCODED] == source.read_bytes()
        else:
            assert min(shape[:2]) == 48
            assert len(r[features.IMAGE_ENCODED]) < source.stat().st_size
    # The same command again finds the output complete, and says how the
    # command (not the Python API) asks for a rewrite.
    capsys.readouterr()
    assert cli.main(argv) == 0
    line = capsys.readouterr().out
    assert "already complete" in line and "(--overwrite rewrites it)" in line
    assert "overwrite=True" not in line


def test_original_ingest_keeps_its_fingerprint_options(tmp_path):
    _photo_folders(tmp_path / "src", [(40, 30)] * 4)
    data = ingest(tmp_path / "src", tmp_path / "out", workers=1,
                  progress=False)
    # Ingests made before compact storage existed stay complete.
    assert sorted(data["options"]) == [
        "max_pixels", "num_shards", "seed", "validation_split"]
    assert data["storage"]["kind"] == "original"
    assert data["storage"]["formats"] == {"jpeg": 4}


def test_raw_ingest_round_trips_the_pixels(tmp_path):
    from PIL import Image

    from tfcnn.data.classification_pipeline import make_dataset

    src, out = tmp_path / "src", tmp_path / "out"
    paths = _photo_folders(src, [(16, 16)] * 8, fmt="png")
    data = ingest(src, out, raw=True, workers=1, progress=False,
                  validation_split=0.25)
    manifest = Manifest.load(out)
    assert data["storage"]["kind"] == "raw"
    assert data["storage"]["formats"] == {"raw": 8}
    assert manifest.raw_shape == (16, 16)
    files = manifest.files("train") + manifest.files("validation")
    expected = {}
    for r in _records(files):
        assert r[features.IMAGE_FORMAT] == b"raw"
        name = r[features.IMAGE_FILENAME].decode()
        expected[name] = np.asarray(Image.open(src / name))
        assert r[features.IMAGE_ENCODED] == expected[name].tobytes()
    assert sorted(expected) == sorted(paths)
    # Both readers give back exactly the source pixels.
    for raw_shape in (None, manifest.raw_shape):
        images = np.concatenate([batch for batch, _ in make_dataset(
            files, resize_size=16, batch_size=3, training=False,
            raw_shape=raw_shape)])
        np.testing.assert_array_equal(
            np.sort(images.reshape(8, -1), axis=0),
            np.sort(np.stack([e.reshape(-1) for e in expected.values()]),
                    axis=0))


@pytest.mark.parametrize("kwargs, message", [
    ({"max_side": 10, "shorter_side": 10}, "not both"),
    ({"max_side": -1}, "max_side must be an int >= 0"),
    ({"shorter_side": 2.5}, "shorter_side must be an int"),
    ({"jpeg_quality": 0}, "jpeg_quality must be an int in"),
    ({"jpeg_quality": 101}, "jpeg_quality must be an int in"),
])
def test_bad_storage_arguments(tmp_path, kwargs, message):
    _photo_folders(tmp_path / "src", [(40, 30)] * 2)
    with pytest.raises(DataError, match=message):
        ingest(tmp_path / "src", tmp_path / "out", workers=1,
               progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_both_size_limits_on_the_command_line(tmp_path, capsys):
    from tfcnn import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["ingest", str(tmp_path), str(tmp_path / "out"),
                  "--max-side", "8", "--shorter-side", "8"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


_INGEST_BOTH = textwrap.dedent("""
    import sys
    from tfcnn import tasks
    for src, out in zip(sys.argv[1::2], sys.argv[2::2]):
        tasks.ingest(src, out, workers=1, progress=False)
""")


@pytest.mark.slow
def test_reingest_in_another_process_gives_identical_shard_bytes(tmp_path):
    """The Example's feature map is serialized in key order, not in the
    order of the process's string hashes."""
    from tests.data import segmentation_files

    _make_folders(tmp_path / "src", per_class=3)
    segmentation_files.make_voc(tmp_path / "voc", train=3, val=1)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    for seed in ("1", "2"):
        subprocess.run(
            [sys.executable, "-c", _INGEST_BOTH,
             str(tmp_path / "src"), str(tmp_path / f"classes{seed}"),
             str(tmp_path / "voc"), str(tmp_path / f"voc{seed}")],
            env=dict(env, PYTHONHASHSEED=seed), check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for kind in ("classes", "voc"):
        first, second = tmp_path / f"{kind}1", tmp_path / f"{kind}2"
        shards = sorted(p.name for p in first.glob("*.tfrecord"))
        assert shards and shards == sorted(
            p.name for p in second.glob("*.tfrecord"))
        for name in shards:
            assert (first / name).read_bytes() == (
                second / name).read_bytes(), name
        assert _shard_digests(first) == _shard_digests(second)
