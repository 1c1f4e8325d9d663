"""The serving model of semantic segmentation: image bytes to a class map.

A segmentation model (``tfcnn.tasks.semantic_segmentation``) scores every
pixel of an image of any size, so serving decodes each image at its own
size (``tfcnn.data.preprocess.decode_image``, the decoding evaluation
uses) and answers at that size. Signatures:

- ``serving_default``: ``image_bytes [B]`` string -> ``class_map``
  int32 ``[B, H, W]``, the arg-max class of every pixel;
- ``predict_probabilities``: ``image_bytes [B]`` -> ``class_map`` and
  ``probabilities`` float32 ``[B, H, W, K]``;
- ``predict_images_uint8``: ``images [B, H, W, 3]`` uint8 -> both.

The images of one request share one height and width (a batch is one
tensor); send images of other sizes in separate requests.
"""

import keras
import numpy as np
import tensorflow as tf

from tfcnn.data import preprocess
from tfcnn.export import arguments

SERVING_DEFAULT = "serving_default"
PREDICT_PROBABILITIES = "predict_probabilities"
PREDICT_IMAGES_UINT8 = "predict_images_uint8"
SIGNATURES = (SERVING_DEFAULT, PREDICT_PROBABILITIES, PREDICT_IMAGES_UINT8)
# Inputs the self-check and the warm-up file send, per signature.
_INPUTS = {SERVING_DEFAULT: "image_bytes",
           PREDICT_PROBABILITIES: "image_bytes",
           PREDICT_IMAGES_UINT8: "images"}


class SegmentationServingModel:
    """The serving functions of one trained segmentation model.

    Args:
        model: ``keras.Model`` from uint8 ``[B, H, W, 3]`` images (any
            size) to float32 probabilities ``[B, H, W, K]``.
        class_names: sequence of ``K`` str.
        top_k: unused (classifiers' option), accepted for one signature.
    """

    def __init__(self, model, class_names, top_k=0):
        del top_k
        shape = tuple(model.outputs[0].shape)
        if len(model.outputs) != 1 or len(shape) != 4 or shape[-1] is None:
            raise arguments.ArgumentError(
                "a segmentation model must have one [batch, height, width, "
                f"num_classes] output. Received: output_shape={shape}")
        self.model = model
        self.num_classes = int(shape[-1])
        self.class_names = [str(name) for name in class_names]
        if len(self.class_names) != self.num_classes:
            raise arguments.ArgumentError(
                f"class_names must have one name per class "
                f"({self.num_classes}). "
                f"Received: len(class_names)={len(self.class_names)}")

    def segment_images(self, images):
        """uint8 ``[B, H, W, 3]`` -> ``class_map`` and ``probabilities``."""
        images = tf.cast(images, self.model.inputs[0].dtype)
        probabilities = tf.cast(self.model(images, training=False),
                                tf.float32)
        return {"class_map": tf.argmax(probabilities, axis=-1,
                                       output_type=tf.int32),
                "probabilities": probabilities}

    def segment_bytes(self, image_bytes):
        """Encoded images ``[B]`` (one size) -> the output dict."""
        images = tf.map_fn(
            preprocess.decode_image, image_bytes,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
        return self.segment_images(images)

    def archive(self):
        """A ``keras.export.ExportArchive`` with the three signatures."""
        archive = keras.export.ExportArchive()
        archive.track(self.model)

        def class_map_fn(image_bytes):
            return {"class_map": self.segment_bytes(image_bytes)[
                "class_map"]}

        archive.add_endpoint(
            SERVING_DEFAULT, class_map_fn,
            [tf.TensorSpec([None], tf.string, name="image_bytes")])
        archive.add_endpoint(
            PREDICT_PROBABILITIES, self.segment_bytes,
            [tf.TensorSpec([None], tf.string, name="image_bytes")])
        archive.add_endpoint(
            PREDICT_IMAGES_UINT8, self.segment_images,
            [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
        return archive

    def metadata(self):
        """What ``export.json`` records about the served model."""
        return {"task": "segmentation", "num_classes": self.num_classes,
                "class_names": self.class_names,
                "signatures": list(SIGNATURES),
                "outputs": {"class_map": "int32 [B, H, W]",
                            "probabilities": "float32 [B, H, W, K]"}}

    def warmup_inputs(self):
        """signature -> (input name, value) of TF Serving's warm-up file."""
        image = np.full((48, 40, 3), 128, np.uint8)
        encoded = tf.io.encode_png(image).numpy()
        return {SERVING_DEFAULT: ("image_bytes", [encoded]),
                PREDICT_PROBABILITIES: ("image_bytes", [encoded]),
                PREDICT_IMAGES_UINT8: ("images", image[None])}

    def selfcheck_cases(self):
        """The self-check's inputs and the Keras model's answers.

        Two images of an odd size (not a multiple of any stride), one
        PNG and one lossless re-encoding, so the decoded pixels are known.

        Returns:
            ``(arrays, signatures)`` as ``tfcnn.export.selfcheck`` reads
            them.
        """
        rng = np.random.default_rng(20120)
        pixels = rng.integers(0, 256, (2, 37, 45, 3), dtype=np.uint8)
        encoded = [tf.io.encode_png(image).numpy() for image in pixels]
        expected = np.asarray(self.model(pixels, training=False),
                              np.float32)
        arrays, signatures = {}, {}
        for name in SIGNATURES:
            input_name = _INPUTS[name]
            if input_name == "image_bytes":
                for i, value in enumerate(encoded):
                    arrays[f"{name}:{input_name}:{i}"] = np.frombuffer(
                        value, np.uint8)
                signatures[name] = {"input": input_name, "strings": True,
                                    "count": len(encoded)}
            else:
                arrays[f"{name}:{input_name}"] = pixels
                signatures[name] = {"input": input_name, "strings": False}
            arrays[f"{name}:expected"] = expected
        return arrays, signatures
