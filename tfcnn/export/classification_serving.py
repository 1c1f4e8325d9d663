"""The serving model: a trained Keras model wrapped in SavedModel signatures.

The serving graph is the evaluation path of the training pipeline and
nothing else: encoded bytes are decoded and resized by
``tfcnn.data.preprocess.decode_and_resize`` (the host function that feeds
training and evaluation), and the training model, called in inference mode,
does the centre crop, mean subtraction and cast with its own layers. The
preprocessing constants are therefore the model's own weights; serving can't
drift from training.

Signatures (all return ``probabilities [B, K]`` float32, ``class_ids
[B, k]`` int32, ``scores [B, k]`` float32 and ``class_names [B, k]`` string,
best first):

- ``serving_default``: ``image_bytes [B]`` string, JPEG/PNG/GIF/BMP bytes of
  any size.
- ``predict_images``: ``images [B, H, W, 3]`` float32 with pixel values in
  [0, 255], any ``H`` and ``W``.
- ``predict_images_uint8``: ``images [B, H, W, 3]`` uint8, any ``H``, ``W``.
- ``predict_examples``: ``examples [B]`` serialized ``tf.Example`` in the
  dataset schema, decoded as training decodes shard records
  (``tfcnn.data.preprocess.decode_record``): original, compact and raw
  records alike.

Keras' ``ExportArchive`` does the tracking of the model's variables and the
writing; this module adds the preprocessing and the top-k head around it.
"""

import keras
import numpy as np
import tensorflow as tf

from tfcnn.data import features
from tfcnn.data import preprocess
from tfcnn.export import arguments

SERVING_DEFAULT = "serving_default"
PREDICT_IMAGES = "predict_images"
PREDICT_IMAGES_UINT8 = "predict_images_uint8"
PREDICT_EXAMPLES = "predict_examples"
SIGNATURES = (SERVING_DEFAULT, PREDICT_IMAGES, PREDICT_IMAGES_UINT8,
              PREDICT_EXAMPLES)
OUTPUTS = ("probabilities", "class_ids", "scores", "class_names")


def resize_size(model):
    """Returns the host resize target ``S`` of a model with input [B, S, S, 3].

    Args:
        model: a ``keras.Model`` with one image input.

    Raises:
        ArgumentError: (a ValueError) the model does not take one square
            RGB image.
    """
    if len(model.inputs) != 1:
        raise arguments.ArgumentError(
            "the model must have exactly one image input. "
            f"Received: model.inputs={model.inputs}")
    shape = tuple(model.inputs[0].shape)
    if (len(shape) != 4 or shape[1] is None or shape[1] != shape[2]
            or shape[3] != 3):
        raise arguments.ArgumentError(
            "the model input must be [batch, S, S, 3] with a known S. "
            f"Received: input_shape={shape}")
    return int(shape[1])


def num_classes(model):
    """Returns ``K`` of a model whose output is ``[B, K]`` probabilities."""
    shape = tuple(model.outputs[0].shape)
    if len(model.outputs) != 1 or len(shape) != 2 or shape[1] is None:
        raise arguments.ArgumentError(
            "the model must have one [batch, num_classes] output. "
            f"Received: output_shape={shape}")
    return int(shape[1])


class ServingModel:
    """The serving functions of one trained model.

    Args:
        model: ``keras.Model`` following the training-model contract (input
            ``[B, S, S, 3]`` uint8 named "image", output ``[B, K]``
            probabilities).
        class_names: sequence of ``K`` str.
        top_k: int, how many classes each answer lists; at most ``K``
            (larger values are clamped to ``K``). Defaults to 5.

    Example:

    >>> serving = ServingModel(model, ["cat", "dog"], top_k=1)
    >>> serving.archive().write_out("/tmp/cats/1", verbose=False)
    """

    def __init__(self, model, class_names, top_k=5):
        self.model = model
        self.resize_size = resize_size(model)
        self.num_classes = num_classes(model)
        class_names = [str(name) for name in class_names]
        if len(class_names) != self.num_classes:
            raise arguments.ArgumentError(
                f"class_names must have one name per model output "
                f"({self.num_classes}). "
                f"Received: len(class_names)={len(class_names)}")
        arguments.check_positive_int(top_k, "top_k")
        self.class_names = class_names
        self.top_k = min(top_k, self.num_classes)

    def classify_images(self, images):
        """Resized ``[B, S, S, 3]`` uint8 images -> the output dict."""
        images = tf.cast(images, self.model.inputs[0].dtype)
        probabilities = tf.cast(self.model(images, training=False),
                                tf.float32)
        scores, class_ids = tf.math.top_k(probabilities, k=self.top_k)
        names = tf.constant(self.class_names, dtype=tf.string)
        return {
            "probabilities": probabilities,
            "class_ids": class_ids,
            "scores": scores,
            "class_names": tf.gather(names, class_ids),
        }

    def classify_bytes(self, image_bytes):
        """Encoded images ``[B]`` string -> the output dict."""
        images = tf.map_fn(
            lambda encoded: preprocess.decode_and_resize(
                encoded, self.resize_size),
            image_bytes,
            fn_output_signature=tf.TensorSpec(
                [self.resize_size, self.resize_size, 3], tf.uint8))
        return self.classify_images(images)

    def classify_pixels(self, images):
        """``[B, H, W, 3]`` images of any size and real dtype -> outputs."""
        resized = tf.map_fn(
            lambda image: preprocess.resize_shorter_and_centre_crop(
                image, self.resize_size),
            images,
            fn_output_signature=tf.TensorSpec(
                [self.resize_size, self.resize_size, 3], tf.uint8))
        return self.classify_images(resized)

    def classify_examples(self, examples):
        """Serialized ``tf.Example`` ``[B]`` -> the output dict."""
        keys = (features.IMAGE_ENCODED, features.IMAGE_FORMAT,
                features.IMAGE_HEIGHT, features.IMAGE_WIDTH)
        parsed = tf.io.parse_example(
            examples, {key: features.FEATURE_SPEC[key] for key in keys})
        images = tf.map_fn(
            lambda fields: preprocess.decode_record(*fields, self.resize_size),
            tuple(parsed[key] for key in keys),
            fn_output_signature=tf.TensorSpec(
                [self.resize_size, self.resize_size, 3], tf.uint8))
        return self.classify_images(images)

    def metadata(self):
        """What ``export.json`` records about the served model."""
        return {"resize_size": self.resize_size,
                "num_classes": self.num_classes, "top_k": self.top_k,
                "class_names": self.class_names,
                "signatures": list(SIGNATURES)}

    def warmup_inputs(self):
        """signature -> (input name, value) of TF Serving's warm-up file."""
        image = np.full((self.resize_size, self.resize_size, 3), 128, np.uint8)
        encoded = tf.io.encode_png(image).numpy()
        example = features.make_example(
            encoded, image_format="png", height=self.resize_size,
            width=self.resize_size, label=0, text="",
            filename="warmup.png").SerializeToString()
        return {
            SERVING_DEFAULT: ("image_bytes", [encoded]),
            PREDICT_IMAGES: ("images", image[None].astype(np.float32)),
            PREDICT_IMAGES_UINT8: ("images", image[None]),
            PREDICT_EXAMPLES: ("examples", [example]),
        }

    def selfcheck_cases(self):
        """The self-check's inputs and the Keras model's answers.

        Returns:
            ``(arrays, signatures)`` as ``tfcnn.export.selfcheck`` reads
            them.
        """
        encoded, pixels, examples = _sample_inputs(self.resize_size)

        def keras_probabilities(images):
            images = tf.cast(images, self.model.inputs[0].dtype)
            return np.asarray(self.model(images, training=False),
                              np.float32)

        from_bytes = keras_probabilities(tf.stack(
            [preprocess.decode_and_resize(data, self.resize_size)
             for data in encoded]))
        from_pixels = keras_probabilities(tf.stack(
            [preprocess.resize_shorter_and_centre_crop(image, self.resize_size)
             for image in pixels]))
        arrays = {}
        signatures = {}

        def add_strings(signature, input_name, values, expected):
            for i, value in enumerate(values):
                arrays[f"{signature}:{input_name}:{i}"] = np.frombuffer(
                    value, np.uint8)
            arrays[f"{signature}:expected"] = expected
            signatures[signature] = {"input": input_name, "strings": True,
                                     "count": len(values)}

        def add_tensor(signature, input_name, value, expected):
            arrays[f"{signature}:{input_name}"] = value
            arrays[f"{signature}:expected"] = expected
            signatures[signature] = {"input": input_name, "strings": False}

        add_strings(SERVING_DEFAULT, "image_bytes", encoded, from_bytes)
        add_strings(PREDICT_EXAMPLES, "examples", examples, from_bytes)
        add_tensor(PREDICT_IMAGES, "images", pixels.astype(np.float32),
                   from_pixels)
        add_tensor(PREDICT_IMAGES_UINT8, "images", pixels, from_pixels)
        return arrays, signatures

    def archive(self):
        """Returns a ``keras.export.ExportArchive`` with the four signatures.

        ``serving_default`` is registered first, so TF Serving and
        ``saved_model_cli`` see it as the default.
        """
        archive = keras.export.ExportArchive()
        archive.track(self.model)

        def image_bytes_fn(image_bytes):
            return self.classify_bytes(image_bytes)

        def images_fn(images):
            return self.classify_pixels(images)

        def examples_fn(examples):
            return self.classify_examples(examples)

        pixels = [None, None, None, 3]
        archive.add_endpoint(
            SERVING_DEFAULT, image_bytes_fn,
            [tf.TensorSpec([None], tf.string, name="image_bytes")])
        archive.add_endpoint(
            PREDICT_IMAGES, images_fn,
            [tf.TensorSpec(pixels, tf.float32, name="images")])
        archive.add_endpoint(
            PREDICT_IMAGES_UINT8, images_fn,
            [tf.TensorSpec(pixels, tf.uint8, name="images")])
        archive.add_endpoint(
            PREDICT_EXAMPLES, examples_fn,
            [tf.TensorSpec([None], tf.string, name="examples")])
        return archive


def _sample_inputs(size):
    """Deterministic sample inputs: encoded images, pixels and examples."""
    rng = np.random.default_rng(20120)
    shapes = [(size, size), (size + size // 2, size + 3),
              (max(size // 2, 4), size + size // 4)]
    encoded = []
    for i, (height, width) in enumerate(shapes):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        encode = tf.io.encode_png if i % 2 == 0 else tf.io.encode_jpeg
        encoded.append(encode(image).numpy())
    pixels = rng.integers(0, 256, (3, size + 5, size + size // 3, 3),
                          dtype=np.uint8)
    examples = [
        features.make_example(
            data, image_format="png" if i % 2 == 0 else "jpeg", height=0,
            width=0, label=0, text="", filename=f"sample{i}").
        SerializeToString()
        for i, data in enumerate(encoded)]
    return encoded, pixels, examples
