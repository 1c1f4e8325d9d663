"""The model registry: names, errors, variants and the shared signature."""

import inspect

import keras
import pytest

import tfcnn.models
from tfcnn.errors import ModelOptionError
from tfcnn.errors import TfcnnError
from tfcnn.errors import UnknownModelError
from tfcnn.models import registry
from tfcnn.models.applications import APPLICATIONS

SHARED = ("input_shape", "num_classes", "include_top", "pooling",
          "classifier_activation", "name")


def test_every_family_of_the_issue_is_registered():
    names = set(tfcnn.models.list_models())
    assert {"lenet5", "alexnet", "alexnet_one_tower", "vgg16", "vgg19",
            "resnet18", "resnet34", "resnet50", "resnet101", "resnet50_gn",
            "googlenet", "fcn32s", "fcn16s", "fcn8s", "dilation8", "cnn1d",
            "textcnn"} <= names
    assert tfcnn.models.list_models() == sorted(names)


def test_every_builder_has_the_shared_signature():
    for name in tfcnn.models.list_models():
        parameters = inspect.signature(
            tfcnn.models.get_builder(name)).parameters
        assert tuple(parameters)[:5] == SHARED[:5], name
        assert parameters["name"].default == name


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownModelError, match="unknown model 'resnet51'") \
            as raised:
        tfcnn.models.build("resnet51")
    message = str(raised.value)
    for name in tfcnn.models.list_models():
        assert name in message
    assert isinstance(raised.value, KeyError)
    assert isinstance(raised.value, TfcnnError)


def test_unknown_option_is_named_with_the_valid_ones():
    with pytest.raises(ModelOptionError, match="no option 'depth'") as raised:
        tfcnn.models.build("vgg16", depth=11)
    assert "norm" in str(raised.value)
    assert isinstance(raised.value, TypeError)


BAD_OPTIONS = [
    ("resnet50", dict(shortcut="D"), "Received: shortcut='D'"),
    ("resnet50", dict(norm="layer"), "Received: norm='layer'"),
    ("resnet50_gn", dict(norm_groups=0), "Received: norm_groups=0"),
    ("resnet50", dict(output_stride=4), "Received: output_stride=4"),
    ("vgg16", dict(width_multiplier=0), "Received: width_multiplier=0"),
    ("vgg16", dict(num_classes=0), "Received: num_classes=0"),
    ("vgg16", dict(input_shape=(224, 224)), "Received: input_shape"),
    ("vgg16", dict(pooling="sum", include_top=False), "Received: pooling"),
    ("alexnet", dict(towers=4), "Received: towers=4"),
    ("alexnet", dict(input_shape=(64, 64, 3)), "at least 67x67"),
    ("alexnet", dict(dropout=1.0), "Received: dropout=1.0"),
    ("googlenet", dict(inception="wide"), "Received: inception='wide'"),
    ("googlenet", dict(norm="group"), "norm='group'"),
    ("googlenet", dict(aux_classifiers=True, input_shape=(64, 64, 3)),
     "at least 80x80"),
    ("fcn8s", dict(input_shape=(100, 96, 3)), "multiples of 32"),
    ("dilation8", dict(input_shape=(36, 36, 3)), "multiples of 8"),
    ("cnn1d", dict(input_shape=(32, 32, 3)), "(steps, channels)"),
    ("cnn1d", dict(filters=(8, 8), kernel_sizes=(3,)), "same length"),
    ("textcnn", dict(input_shape=(4,)), "at least 5 steps"),
]


def test_bad_options_are_named_in_the_error():
    # One test over the table: each case fails before building anything.
    for name, options, match in BAD_OPTIONS:
        try:
            tfcnn.models.build(name, **options)
        except ValueError as error:
            assert match in str(error), (name, options, str(error))
        else:
            pytest.fail(f"{name}({options}) raised no ValueError")


def test_default_inputs_are_what_the_pipeline_feeds():
    # tfcnn's pipeline feeds RGB, grey images as three equal channels
    # (LeNet-5's 1998 input was one grey channel). keras.applications'
    # networks take (size, size, 3) by construction (test_applications).
    for name in tfcnn.models.list_models():
        if name in APPLICATIONS:
            continue
        shape = tfcnn.models.describe(name)["input_shape"]
        if len(shape) == 3:  # images; the 1-D text models take tokens
            assert shape[-1] == 3, (name, shape)


def test_the_model_name_is_an_option():
    model = tfcnn.models.build("lenet5", name="digits")
    assert model.name == "digits"


def test_duplicate_registration_raises():
    with pytest.raises(KeyError, match="already registered"):
        tfcnn.models.register_model("vgg16")(lambda: None)


def test_register_variant_fixes_and_exposes_arguments():
    def family(depth, input_shape=(8, 8, 3), num_classes=2,
               include_top=True, pooling=None,
               classifier_activation="softmax", name=None, width=1):
        return depth, input_shape, num_classes, name, width

    variant = registry.register_variant("test_variant_7", family,
                                        fixed={"depth": 7},
                                        defaults={"width": 3})
    try:
        parameters = inspect.signature(variant).parameters
        assert "depth" not in parameters
        assert parameters["width"].default == 3
        assert variant.__name__ == "test_variant_7"
        assert tfcnn.models.build("test_variant_7", num_classes=5) == (
            7, (8, 8, 3), 5, "test_variant_7", 3)
        with pytest.raises(ModelOptionError):
            tfcnn.models.build("test_variant_7", depth=9)
    finally:
        registry._REGISTRY.pop("test_variant_7")


def test_describe_counts_without_allocating_weights():
    from keras.src.backend.common import global_state

    info = tfcnn.models.describe("vgg16")
    assert info == {"name": "vgg16", "parameters": 138_357_544,
                    "trainable": 138_357_544, "input_shape": (224, 224, 3)}
    # Nothing is left for a later StatelessScope to initialize.
    assert not global_state.get_global_attribute("uninitialized_variables")
    info = tfcnn.models.describe("resnet18", input_shape=(64, 64, 3),
                                 num_classes=10)
    assert info["trainable"] == 11_689_512 - 513 * 990
    assert info["parameters"] - info["trainable"] == 2 * 4_800
    with pytest.raises(UnknownModelError):
        tfcnn.models.describe("vgg17")


def test_models_command_lists_every_model_with_its_count(monkeypatch,
                                                         capsys):
    from tfcnn import cli

    monkeypatch.setattr(tfcnn.models, "list_models",
                        lambda: ["alexnet", "lenet5"])
    assert cli.main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["model", "parameters"]
    assert lines[1].split() == ["alexnet", "60,965,224", "(224,", "224,",
                                "3)"]
    assert lines[2].split()[:2] == ["lenet5", "62,006"]


def test_channels_first_configuration_is_refused():
    keras.config.set_image_data_format("channels_first")
    try:
        for name in ("vgg16", "cnn1d"):
            with pytest.raises(ValueError, match="channels_last"):
                tfcnn.models.build(name)
    finally:
        keras.config.set_image_data_format("channels_last")


def test_an_unknown_option_names_the_closest_known_one():
    with pytest.raises(ModelOptionError, match="takes no option 'nrom' "
                                               r"\(did you mean 'norm'\?\)"):
        tfcnn.models.build("vgg16", nrom="batch")
