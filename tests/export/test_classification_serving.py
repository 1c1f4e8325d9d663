"""Tests of the serving model: signatures, preprocessing and top-k head."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.export import contract_model
from tfcnn.data import features
from tfcnn.data import preprocess
from tfcnn.export import classification_serving as serving

ATOL = 1e-5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = contract_model.build(seed=1)
    path = tmp_path_factory.mktemp("serving") / "1"
    serving.ServingModel(model, contract_model.CLASS_NAMES, top_k=2) \
        .archive().write_out(str(path), verbose=False)
    return model, tf.saved_model.load(str(path))


def _keras(model, images):
    return np.asarray(model(tf.cast(images, "uint8"), training=False))


def test_signatures_and_their_inputs(exported):
    _, loaded = exported
    assert sorted(loaded.signatures) == sorted(serving.SIGNATURES)
    inputs = {name: fn.structured_input_signature[1]
              for name, fn in loaded.signatures.items()}
    assert inputs["serving_default"]["image_bytes"].dtype == tf.string
    assert inputs["predict_examples"]["examples"].dtype == tf.string
    assert inputs["predict_images"]["images"].dtype == tf.float32
    assert inputs["predict_images_uint8"]["images"].dtype == tf.uint8
    for fn in loaded.signatures.values():
        assert sorted(fn.structured_outputs) == sorted(serving.OUTPUTS)


@pytest.mark.parametrize("count", [1, 3])
def test_bytes_signature_equals_keras_on_decoded_images(exported, count):
    model, loaded = exported
    encoded = contract_model.encoded_images(count, fmt="jpeg")
    out = loaded.signatures["serving_default"](
        image_bytes=tf.constant(encoded))
    expected = _keras(model, tf.stack(
        [preprocess.decode_and_resize(e, contract_model.SIZE)
         for e in encoded]))
    np.testing.assert_allclose(out["probabilities"], expected, atol=ATOL)
    top = np.argsort(-expected, axis=1)[:, :2]
    np.testing.assert_array_equal(out["class_ids"], top)
    np.testing.assert_allclose(
        out["scores"], np.take_along_axis(expected, top, 1), atol=ATOL)
    names = np.array(contract_model.CLASS_NAMES)[top]
    assert out["class_names"].numpy().astype(str).tolist() == \
        names.tolist()


@pytest.mark.parametrize("dtype,signature", [
    (np.float32, "predict_images"), (np.uint8, "predict_images_uint8")])
@pytest.mark.parametrize("shape", [(2, 32, 32), (1, 20, 45), (3, 70, 40)])
def test_image_signatures_resize_any_size(exported, dtype, signature,
                                          shape):
    model, loaded = exported
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    out = loaded.signatures[signature](images=tf.constant(pixels.astype(
        dtype)))
    expected = _keras(model, tf.stack(
        [preprocess.resize_shorter_and_centre_crop(p, contract_model.SIZE)
         for p in pixels]))
    np.testing.assert_allclose(out["probabilities"], expected, atol=ATOL)


def test_example_signature_reads_the_encoded_image(exported):
    model, loaded = exported
    encoded = contract_model.encoded_images(2)
    examples = [features.make_example(
        e, image_format="png", height=1, width=1, label=0, text="",
        filename="x.png").SerializeToString() for e in encoded]
    from_examples = loaded.signatures["predict_examples"](
        examples=tf.constant(examples))
    from_bytes = loaded.signatures["serving_default"](
        image_bytes=tf.constant(encoded))
    np.testing.assert_array_equal(from_examples["probabilities"],
                                  from_bytes["probabilities"])


def test_undecodable_bytes_raise_invalid_argument(exported):
    _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="image file format"):
        loaded.signatures["serving_default"](
            image_bytes=tf.constant([b"not an image"]))


def test_top_k_is_clamped_to_the_number_of_classes():
    model = contract_model.build()
    assert serving.ServingModel(model, ["a", "b", "c"], top_k=10).top_k == 3


@pytest.mark.parametrize("top_k", [0, -1, 2.0, True])
def test_bad_top_k_is_refused(top_k):
    with pytest.raises(ValueError, match="Received: top_k="):
        serving.ServingModel(contract_model.build(), ["a", "b", "c"],
                             top_k=top_k)


def test_class_names_must_match_the_outputs():
    with pytest.raises(ValueError, match=r"Received: len\(class_names\)=2"):
        serving.ServingModel(contract_model.build(), ["a", "b"])


def test_non_square_input_is_refused():
    inputs = keras.Input((32, 24, 3), dtype="uint8")
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(
        keras.layers.Rescaling(1.0)(inputs)))
    with pytest.raises(ValueError, match="Received: input_shape="):
        serving.resize_size(keras.Model(inputs, outputs))


def _record(encoded, image_format, height, width):
    return features.make_example(
        encoded, image_format=image_format, height=height, width=width,
        label=0, text="", filename="").SerializeToString()


def test_raw_and_compact_records_serve_the_pixels_training_sees(exported):
    """The consistency guarantee of raw and compact shards.

    ``predict_examples`` decodes a record exactly as training does
    (``decode_record``), raw records included. Serving otherwise takes
    encoded images: a raw record holds the source's 8-bit RGB pixels, so a
    client sending a lossless PNG of those pixels gets the very answer
    training's pixels give; a compact record's stored JPEG sent as bytes
    does too.
    """
    model, loaded = exported
    rng = np.random.default_rng(3)
    pixels = [rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
              for h, w in ((40, 32), (32, 32), (50, 70))]
    raw = [_record(p.tobytes(), "raw", *p.shape[:2]) for p in pixels]
    pngs = [tf.io.encode_png(p).numpy() for p in pixels]
    jpegs = [tf.io.encode_jpeg(p, quality=90).numpy() for p in pixels]
    compact = [_record(j, "jpeg", *p.shape[:2])
               for j, p in zip(jpegs, pixels)]
    for records, encoded in ((raw, pngs), (compact, jpegs)):
        training_pixels = tf.stack([
            preprocess.decode_record(*fields, contract_model.SIZE)
            for fields in (
                (tf.io.parse_single_example(r, features.FEATURE_SPEC)[key]
                 for key in (features.IMAGE_ENCODED, features.IMAGE_FORMAT,
                             features.IMAGE_HEIGHT, features.IMAGE_WIDTH))
                for r in records)])
        expected = _keras(model, training_pixels)
        from_records = loaded.signatures["predict_examples"](
            examples=tf.constant(records))["probabilities"]
        from_bytes = loaded.signatures["serving_default"](
            image_bytes=tf.constant(encoded))["probabilities"]
        np.testing.assert_allclose(from_records, expected, atol=ATOL)
        np.testing.assert_allclose(from_bytes, expected, atol=ATOL)
