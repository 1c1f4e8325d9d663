"""Benchmark: ingest images/s against just reading the files' bytes.

Makes ~2,000 ImageNet-sized JPEGs (about 500x375, some portrait) from crops
and resizes of the real photos that ship with scikit-image, in 10 class
folders in a temporary directory, then measures side by side, in this
process, with the page cache warm:

- ``read_bytes``: open and read every file (the floor: no decode, no write);
- ``ingest``: ``tfcnn.data.classification_ingest`` with all cores (check every
  file, write the shards, hash them, write the manifest);
- ``ingest_1_worker``: the same in one process;
- ``tf_decode_jpeg``: a full ``tf.io.decode_jpeg`` of every file, one at a
  time (what TensorFlow's reference ``build_imagenet_data.py`` does to each
  image before writing it), for scale.

Each figure is the median of the repeats. Run:
``python benchmarks/classification_ingest.py [--quick | --smoke] [--images N]``
(``--smoke``: 20 images once, to prove the script; its figures mean
nothing). The last line is one JSON object with all figures.
"""

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "cat", "motorcycle_left",
          "motorcycle_right")


def make_jpegs(folder, count, seed=0):
    """Writes ``count`` JPEGs of about 500x375 made from skimage photos."""
    from skimage import data as skdata

    photos = []
    for name in PHOTOS:
        loader = getattr(skdata, name, None)
        if loader is None:
            continue
        try:
            image = np.asarray(loader())
        except Exception:  # noqa: BLE001 (a photo may need a download)
            continue
        if image.ndim == 3 and image.shape[2] >= 3:
            photos.append(Image.fromarray(image[..., :3].astype(np.uint8)))
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        photo = photos[i % len(photos)]
        width, height = photo.size
        crop_w = int(rng.uniform(0.5, 1.0) * width)
        crop_h = int(rng.uniform(0.5, 1.0) * height)
        left = int(rng.integers(0, width - crop_w + 1))
        top = int(rng.integers(0, height - crop_h + 1))
        size = (500, 375) if rng.random() < 0.8 else (375, 500)
        size = tuple(int(s * rng.uniform(0.85, 1.15)) for s in size)
        image = photo.crop((left, top, left + crop_w, top + crop_h)).resize(
            size, Image.BILINEAR)
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        path = folder / f"class{i % 10:02d}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format="JPEG", quality=90)
        total += path.stat().st_size
    return len(photos), total


def read_bytes(paths):
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            total += len(f.read())
    return total


def tf_decode(paths):
    import tensorflow as tf

    pixels = 0
    for path in paths:
        with open(path, "rb") as f:
            image = tf.io.decode_jpeg(f.read(), channels=3)
        pixels += int(image.shape[0])
    return pixels


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="400 images, one repeat")
    parser.add_argument("--smoke", action="store_true",
                        help="20 images, one repeat: proves the script")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.repeats = 20, 1
    elif args.quick:
        args.images, args.repeats = 400, 1

    from tfcnn.data.classification_ingest import ingest

    root = Path(tempfile.mkdtemp(prefix="tfcnn-bench-ingest-"))
    try:
        src = root / "src"
        started = time.perf_counter()
        num_photos, total_bytes = make_jpegs(src, args.images)
        print(f"made {args.images} JPEGs ({total_bytes / 2**20:.1f} MiB, "
              f"from {num_photos} skimage photos) in "
              f"{time.perf_counter() - started:.1f}s")
        paths = sorted(str(p) for p in src.rglob("*.jpg"))
        read_bytes(paths)  # warm the page cache for every candidate

        def timed(function):
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                function()
                times.append(time.perf_counter() - started)
            return args.images / statistics.median(times)

        cores = len(os.sched_getaffinity(0))
        rates = {
            "read_bytes": timed(lambda: read_bytes(paths)),
            "ingest": timed(lambda: ingest(
                src, root / "out", workers=0, overwrite=True,
                progress=False)),
            "ingest_1_worker": timed(lambda: ingest(
                src, root / "out1", workers=1, overwrite=True,
                progress=False)),
            "tf_decode_jpeg": timed(lambda: tf_decode(paths)),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{'candidate':<18}{'images/s':>12}{'vs read_bytes':>16}")
    for name, rate in rates.items():
        print(f"{name:<18}{rate:>12.1f}{rate / rates['read_bytes']:>16.4f}")
    ratio = rates["ingest"] / rates["read_bytes"]
    print(f"\ningest runs at {ratio:.4f}x the speed of just reading the "
          f"bytes ({cores} cores, median of {args.repeats})")
    print(json.dumps({
        "ingest_images_per_s": round(rates["ingest"], 1),
        "ingest_1_worker_images_per_s": round(rates["ingest_1_worker"], 1),
        "read_bytes_images_per_s": round(rates["read_bytes"], 1),
        "tf_decode_jpeg_images_per_s": round(rates["tf_decode_jpeg"], 1),
        "ratio": round(ratio, 5),
        "num_images": args.images, "cores": cores,
        "repeats": args.repeats,
    }))


if __name__ == "__main__":
    main()
