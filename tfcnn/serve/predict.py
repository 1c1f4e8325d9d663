"""Classifies or segments image files with an exported SavedModel.

``tfcnn predict``.

The SavedModel is used alone, as a deployed one would be: it is loaded with
``tf.saved_model.load`` and called through its ``serving_default`` signature
on the files' encoded bytes, so the answer is the one the server gives.
"""

import os

from tfcnn import storage
from tfcnn.errors import DataError
from tfcnn.export import arguments
from tfcnn.export import layout

_BATCH = 32
# Where segmentation class maps go when no folder is given (a new one).
DEFAULT_OUTPUT = "class_maps"
# The server's limit: images whose header declares more pixels are refused.
DEFAULT_MAX_PIXELS = 40_000_000


def predict(saved_model, image_paths, top_k=5, output_dir=None,
            max_pixels=DEFAULT_MAX_PIXELS):
    """Returns the top-k classes of each image as a JSON-ready dict.

    A segmentation model (its ``serving_default`` answers a ``class_map``)
    instead gets each image's class map written as a palette PNG (Pascal
    VOC's colours; the pixel values are the class ids) and the share of
    the image's pixels each class takes.

    Args:
        saved_model: str or path, a ``.tflite`` file of ``tfcnn export
            --format tflite`` or an exported SavedModel: a version
            directory
            (``saved_models/<name>/<version>``) or a model directory (then
            the newest version).
        image_paths: sequence of image file paths (JPEG, PNG, GIF, BMP).
        top_k: int, classes per image; at most what the model was exported
            with. Defaults to 5.
        output_dir: str or path, the folder segmentation class maps are
            written to (``<image stem>_class_map.png``; created if
            missing); None: a new folder ``class_maps`` in the current
            folder (``class_maps_2``, ``_3``, ... when taken,
            ``new_folder``). A class map is never written over an existing
            file. Defaults to None.
        max_pixels: int, images whose header declares more pixels (width
            x height) are refused before decoding. Defaults to 40,000,000
            (the server's limit).

    Returns:
        ``{"saved_model": str, "version": int or None, "top_k": int,
        "predictions": [{"image": path, "class_ids": [...],
        "class_names": [...], "scores": [...]}, ...]}`` with the
        classes best first; ``scores`` are the top-k probabilities, as in
        the SavedModel's ``scores`` output (its ``probabilities`` output
        is the full vector). Segmentation: ``{"saved_model", "version",
        "output_dir" (the class maps' folder), "predictions": [{"image",
        "class_map" (the PNG's path), "height", "width", "pixel_share":
        {class name: fraction}}, ...]}``, the shares largest first.

    Raises:
        FileNotFoundError: no SavedModel in ``saved_model`` or a missing
            image.
        DataError: an image path is a directory, can't be read or can't be
            decoded, the SavedModel is corrupt (named in the message), or
            a class map would replace an existing file or another image's
            class map (nothing is written then).
        ArgumentError: (a ValueError) ``top_k`` is not a positive int.

    Example:

    >>> result = predict("saved_models/digits", ["seven.png"], top_k=1)
    >>> result["predictions"][0]["class_names"]
    ['7']
    """
    arguments.check_positive_int(top_k, "top_k")
    image_paths = [str(path) if storage.is_url(path) else os.fspath(path)
                   for path in image_paths]
    if not image_paths:
        raise arguments.ArgumentError(
            "image_paths must name at least one image. "
                         "Received: image_paths=[]")
    arguments.check_positive_int(max_pixels, "max_pixels")
    if os.fspath(saved_model).endswith(".tflite"):
        return _predict_tflite(saved_model, image_paths, top_k, max_pixels)
    version_dir, version = layout.resolve_version_dir(saved_model)
    encoded = [_read_image(path, max_pixels) for path in image_paths]
    classify = _load(version_dir).signatures["serving_default"]
    if "class_map" in classify.structured_outputs:
        return _segment(classify, encoded, image_paths, version_dir,
                        version, output_dir)
    predictions = []
    for start in range(0, len(encoded), _BATCH):
        paths = image_paths[start:start + _BATCH]
        outputs = _classify(classify, encoded[start:start + _BATCH], paths)
        k = min(top_k, outputs["class_ids"].shape[1])
        for i, path in enumerate(paths):
            predictions.append({
                "image": path,
                "class_ids": outputs["class_ids"][i, :k].tolist(),
                "class_names": [name.decode("utf-8") for name in
                                outputs["class_names"][i, :k].tolist()],
                "scores": outputs["scores"][i, :k].tolist(),
            })
    return {"saved_model": str(version_dir), "version": version,
            "top_k": min(top_k, len(predictions[0]["class_ids"])),
            "predictions": predictions}


def _segment(segment, encoded, paths, version_dir, version, output_dir):
    """One image at a time (each at its own size): class-map PNGs."""
    import json
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from tfcnn.data.segmentation_masks import voc_palette

    metadata = Path(version_dir) / layout.METADATA_FILE
    names = None
    if metadata.is_file():
        names = json.loads(metadata.read_text()).get("class_names")
    palette = voc_palette().ravel().tolist()
    folder = storage.path(output_dir) if output_dir else new_folder(
        DEFAULT_OUTPUT)
    targets = _class_map_paths(folder, paths)
    folder.mkdir(parents=True, exist_ok=True)
    predictions = []
    for data, path, target in zip(encoded, paths, targets):
        class_map = _classify(segment, [data], [path])["class_map"][0]
        image = Image.fromarray(class_map.astype(np.uint8), mode="P")
        image.putpalette(palette)
        # Never over a file made since (object storage has no exclusive
        # create: there only _class_map_paths' check holds).
        with storage.open_file(target, "wb" if storage.is_url(
                target) else "xb") as file:
            image.save(file, format="PNG")
        ids, counts = np.unique(class_map, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        share = {(names[i] if names and i < len(names) else str(i)):
                 float(c / class_map.size)
                 for i, c in zip(ids[order].tolist(), counts[order])}
        predictions.append({"image": path, "class_map": str(target),
                            "height": int(class_map.shape[0]),
                            "width": int(class_map.shape[1]),
                            "pixel_share": share})
    return {"saved_model": str(version_dir), "version": version,
            "output_dir": str(folder), "predictions": predictions}


def new_folder(base):
    """``base`` if no such path exists, else the first free ``base_2``,
    ``base_3``, ... (a Path)."""
    base = storage.path(base)
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}_{number}")
    return candidate


def _class_map_paths(folder, paths):
    """The class-map file of each image in ``folder``; raises DataError
    before anything is written when one exists or two would collide."""
    from pathlib import Path

    targets = [folder / f"{Path(path).stem}_class_map.png" for path in paths]
    seen = {}
    for path, target in zip(paths, targets):
        if target in seen:
            raise DataError(
                f"{path} and {seen[target]} would both write {target}; "
                "predict them into different --out folders. Received: "
                f"{path}")
        seen[target] = path
        if target.exists():
            raise DataError(
                f"{target} exists and is not replaced; choose another "
                f"--out folder or remove it. Received: --out {folder}")
    return targets


def _predict_tflite(path, image_paths, top_k, max_pixels):
    """``predict`` with a ``.tflite`` of ``tfcnn.export.tflite``: each
    image is decoded and resized to the file's square input as the
    SavedModel's serving does (``decode_and_resize``)."""
    import numpy as np

    from tfcnn.data import preprocess
    from tfcnn.export import tflite

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no TFLite file at {os.fspath(path)!r}")
    runner = tflite.TFLiteModel(path)
    names = runner.class_names
    predictions = []
    for image_path in image_paths:
        image = _decode(preprocess, _read_image(image_path, max_pixels),
                        image_path,
                        runner.image_size[0])
        output = runner(image[None])[0]
        if runner.output == tflite.CLASS_MAP:
            ids, counts = np.unique(output, return_counts=True)
            order = np.argsort(-counts, kind="stable")
            predictions.append({
                "image": image_path, "height": int(output.shape[0]),
                "width": int(output.shape[1]),
                "pixel_share": {(names[i] if names else str(i)):
                                float(c / output.size) for i, c in
                                zip(ids[order].tolist(), counts[order])}})
            continue
        ranked = np.argsort(-output, kind="stable")[:top_k].tolist()
        predictions.append({
            "image": image_path, "class_ids": ranked,
            "class_names": [names[i] if names else str(i) for i in ranked],
            "scores": [float(output[i]) for i in ranked]})
    return {"saved_model": os.fspath(path), "version": None,
            "top_k": top_k, "predictions": predictions}


def _decode(preprocess, data, path, size):
    import tensorflow as tf

    try:
        return preprocess.decode_and_resize(tf.constant(data), size).numpy()
    except tf.errors.InvalidArgumentError:
        raise DataError(f"{path}: not a decodable image (JPEG, PNG, GIF or "
                        "BMP)") from None


def _read_image(path, max_pixels):
    """The bytes of an image file; one clear error for what is not one.

    An image whose header declares more than ``max_pixels`` pixels is
    refused before it is decoded (``tfcnn.serve.inputs.image_too_large``,
    the server's check).
    """
    from tfcnn.serve import inputs

    if storage.path(path).is_dir():
        raise DataError(f"{path}: is a directory, not an image file")
    try:
        with storage.open_file(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise DataError(f"{path}: can't be read: {error.strerror}") \
            from None
    problem = inputs.image_too_large(data, max_pixels)
    if problem is not None:
        raise DataError(f"{path}: {problem} (raise --max-pixels to "
                        "allow it)")
    return data


def _load(version_dir):
    """Loads a SavedModel; a corrupt one is a ``DataError`` naming it."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(version_dir))
    except Exception as error:  # noqa: BLE001  (any parse or load failure)
        first = (str(error).strip().splitlines() or [""])[0]
        raise DataError(
            f"{version_dir}: not a loadable SavedModel "
            f"({type(error).__name__}: {first})") from None
    if "serving_default" not in loaded.signatures:
        raise DataError(f"{version_dir}: the SavedModel has no "
                        "serving_default signature")
    return loaded


def _classify(classify, encoded, paths):
    """Runs the signature on a batch; names the file that fails to decode."""
    import tensorflow as tf

    try:
        outputs = classify(image_bytes=tf.constant(encoded))
    except tf.errors.InvalidArgumentError:
        for data, path in zip(encoded, paths):
            try:
                tf.io.decode_image(data, channels=3, expand_animations=False)
            except tf.errors.InvalidArgumentError:
                raise DataError(
                    f"{path}: not a decodable image (JPEG, PNG, GIF or "
                    "BMP)") from None
        raise
    return {name: value.numpy() for name, value in outputs.items()}


def format_predictions(result):
    """Formats ``predict``'s result as readable text, one block per image.

    Example:

    >>> print(format_predictions(result))
    seven.png
      1. 7                  0.9821
    """
    lines = [f"model {result['saved_model']}"]
    for prediction in result["predictions"]:
        lines.append(prediction["image"])
        if "pixel_share" in prediction:
            lines.append(f"  class map {prediction.get('class_map', '')} "
                         f"({prediction['height']}x{prediction['width']})")
            for name, share in prediction["pixel_share"].items():
                lines.append(f"  {name:<26s} {share:7.2%}")
            continue
        ranked = zip(prediction["class_names"], prediction["scores"])
        for rank, (name, probability) in enumerate(ranked, start=1):
            lines.append(f"  {rank}. {name:<24s} {probability:.4f}")
    return "\n".join(lines)
