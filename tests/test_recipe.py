"""Tests for tfcnn.recipe: parsing, validation, overrides, shipped recipes."""

import dataclasses
import enum
import random
import re
import tomllib
from pathlib import Path

import pytest

from tfcnn import recipe as recipe_lib
from tfcnn.errors import RecipeError
from tfcnn.recipe import Optimizer
from tfcnn.recipe import Source
from tfcnn.recipe import Strategy

PIPELINES = sorted((Path(__file__).parents[1] / "pipelines").glob("*.toml"))


def _write(tmp_path, text):
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_valid_recipe_is_typed(tmp_path):
    path = _write(tmp_path, """
[data]
source = "digits"
path = "d"
crop_size = 28
resize_size = 32
[model]
name = "lenet5"
options = { activation = "relu" }
[train]
epochs = 3
batch_size = 16
learning_rate = 1
optimizer = "adam"
strategy = "mirrored"
devices = ["/cpu:0", "/cpu:1"]
""")
    recipe = recipe_lib.load_recipe(path)
    assert recipe.data.source is Source.DIGITS
    assert recipe.data.crop_size == 28
    assert recipe.model.options == {"activation": "relu"}
    assert recipe.train.epochs == 3
    assert recipe.train.learning_rate == 1.0
    assert isinstance(recipe.train.learning_rate, float)
    assert recipe.train.optimizer is Optimizer.ADAM
    assert recipe.train.strategy is Strategy.MIRRORED
    assert recipe.train.devices == ("/cpu:0", "/cpu:1")
    # Keys not given keep their defaults.
    assert recipe.export.export_dir == "saved_models"
    assert recipe.data.shard_dir == Path("d_tfrecords")


@pytest.mark.parametrize("text, match", [
    ("[train]\nepochz = 3\n", r"unknown recipe key train\.epochz"),
    ("[trian]\nepochs = 3\n", r"unknown recipe key trian"),
    ("[data]\ncrop_size = 1.5\n", r"data\.crop_size must be an integer"),
    ("[train]\nepochs = true\n", r"train\.epochs must be an integer"),
    ("[train]\nlearning_rate = \"fast\"\n",
     r"train\.learning_rate must be a number"),
    ("[augment]\nflip = 1\n", r"augment\.flip must be a boolean"),
    ("[train]\nstrategy = \"tpu\"\n", r"train\.strategy must be one of"),
    ("[data]\nsource = 3\n", r"data\.source must be one of"),
    ("[train]\ndevices = \"/gpu:0\"\n", r"train\.devices must be a list"),
    ("[model]\noptions = 3\n", r"model\.options must be a table"),
    ("train = 3\n", r"train must be a table"),
    ("[train]\nepochs = 0\n", r"train\.epochs must be > 0"),
    ("[data]\ncrop_size = 300\n", r"data\.crop_size must be <="),
])
def test_bad_keys_are_named(tmp_path, text, match):
    with pytest.raises(RecipeError, match=match):
        recipe_lib.load_recipe(_write(tmp_path, text))


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        recipe_lib.load_recipe(tmp_path / "nope.toml")
    with pytest.raises(RecipeError, match="invalid TOML"):
        recipe_lib.load_recipe(_write(tmp_path, "[train\n"))


def test_overrides(tmp_path):
    path = _write(tmp_path, "[train]\nepochs = 3\n")
    recipe = recipe_lib.load_recipe(path, [
        "train.epochs=7", "train.learning_rate=0.5", "model.name=vgg16",
        "train.jit_compile=true", "data.path=some/where",
        "model.options.activation=relu", "train.devices=['/cpu:0']"])
    assert recipe.train.epochs == 7
    assert recipe.train.learning_rate == 0.5
    assert recipe.model.name == "vgg16"  # a bare word is a string
    assert recipe.train.jit_compile is True
    assert recipe.data.path == "some/where"
    assert recipe.model.options == {"activation": "relu"}
    assert recipe.train.devices == ("/cpu:0",)


@pytest.mark.parametrize("override, match", [
    ("train.epochs=many", r"train\.epochs must be an integer"),
    ("train.nope=1", r"unknown recipe key train\.nope"),
    ("epochs", r"--set takes section\.key=value"),
    ("train.epochs.x=1", r"train\.epochs is not a table"),
])
def test_bad_overrides(tmp_path, override, match):
    with pytest.raises(RecipeError, match=match):
        recipe_lib.load_recipe(_write(tmp_path, "[train]\nepochs = 3\n"),
                               [override])


def test_dump_toml_round_trips():
    recipe = recipe_lib.recipe_from_dict({
        "data": {"source": "tfds", "tfds_name": "x\"y"},
        "model": {"name": "alexnet", "options": {"towers": 2}},
        "train": {"devices": ["/gpu:0"], "precision": "mixed_bfloat16"},
    })
    again = recipe_lib.recipe_from_dict(
        tomllib.loads(recipe_lib.dump_toml(recipe)))
    assert again == recipe


def _random_text(rng):
    # Control characters, quotes, backslashes, DEL, non-ASCII, TOML syntax
    # (not NUL: a recipe refuses it, see test_nul_byte_and_negative_seed_...).
    alphabet = ("ab \n\r\t\x01\x1f\x7f\"'\\[]{}=#.,:"
                "\u00e9\u4e2d\U0001f600")
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))


# Keys whose strings have a grammar: random text would only be refused.
# Keys whose valid values a generic draw would rarely hit.
_CHOICES = {"train.trainable": ["all", "head", "from:fc1"],
            "train.ema_decay": [0.0, 0.0, 0.999],
            "train.early_stopping_patience": [0, 0, 3]}


def _random_value(field_type, default, rng, key=""):
    """A random value that the field's type and validation accept."""
    if key in _CHOICES:
        return rng.choice(_CHOICES[key])
    if isinstance(default, enum.Enum):
        return rng.choice(list(type(default))).value
    if field_type is bool:
        return rng.random() < 0.5
    if field_type is str:
        return _random_text(rng)
    if field_type is tuple:
        return [_random_text(rng) for _ in range(rng.randrange(3))]
    if field_type is dict:
        return {_random_text(rng) or "k": rng.choice(
            [rng.randrange(-5, 5), rng.random(), _random_text(rng), True,
             [1, 2], {"nested key": _random_text(rng)}])
            for _ in range(rng.randrange(3))}
    if field_type is float:
        return rng.choice([default, default * rng.random(), 1e-12, 1e12])
    if field_type is int:
        return rng.choice([default, default + 1, default * 3])
    raise AssertionError(f"no generator for {field_type}")


def test_every_dumped_recipe_parses_back_to_itself():
    rng = random.Random(0)
    checked = 0
    # Validation refuses about five in six random combinations (which
    # ones depends on the draws that every key's field consumes).
    for _ in range(900):
        raw = {}
        for section in dataclasses.fields(recipe_lib.Recipe):
            defaults = section.type()
            raw[section.name] = {
                f.name: _random_value(f.type, getattr(defaults, f.name), rng,
                                      f"{section.name}.{f.name}")
                for f in dataclasses.fields(section.type)
                if rng.random() < 0.5}
        try:
            recipe = recipe_lib.recipe_from_dict(raw)
        except RecipeError:
            continue  # a combination the validation refuses
        text = recipe_lib.dump_toml(recipe)
        assert recipe_lib.recipe_from_dict(tomllib.loads(text)) == recipe, (
            text)
        checked += 1
    assert checked > 80


@pytest.mark.parametrize("text, match", [
    ("[train]\nlearning_rate = nan\n", "learning_rate must be a finite"),
    ("[train]\nlearning_rate = inf\n", "learning_rate must be a finite"),
    ("[train]\nepochs = 10000000000\n", "epochs must be at most"),
    ("[augment]\npca_lighting = -nan\n", "pca_lighting must be a finite"),
])
def test_non_finite_and_absurd_numbers_are_refused(tmp_path, text, match):
    with pytest.raises(RecipeError, match=match):
        recipe_lib.load_recipe(_write(tmp_path, text))


@pytest.mark.parametrize("text, message", [
    ('[data]\npath = "data/a\\u0000b"\n',
     "data.path holds a NUL byte (\\u0000), which no path or name may "
     "hold. Received: 'data/a\\x00b'"),
    ("[train]\nseed = -1\n",
     "train.seed must be in [0, 2**32). Received: -1"),
    ("[data]\nseed = -3\n",
     "data.seed must be in [0, 2**32). Received: -3"),
])
def test_nul_byte_and_negative_seed_end_in_one_line(tmp_path, capsys, text,
                                                    message):
    from tfcnn import cli

    assert cli.main(["ingest", str(_write(tmp_path, text))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(message), err


def test_python_api_refuses_a_nan_learning_rate():
    with pytest.raises(RecipeError, match="learning_rate"):
        recipe_lib.TrainConfig(learning_rate=float("nan"))


def test_replace_changes_one_key():
    recipe = recipe_lib.Recipe()
    changed = recipe.replace(train={"epochs": 2})
    assert changed.train.epochs == 2
    assert changed.train.batch_size == recipe.train.batch_size
    assert recipe.train.epochs != 2


def test_every_key_is_documented():
    rows = recipe_lib.key_docs()
    assert len(rows) == sum(
        len(dataclasses.fields(section.type))
        for section in dataclasses.fields(recipe_lib.Recipe))
    undocumented = [key for key, _, _, doc in rows if not doc]
    assert not undocumented
    docs = {key: doc for key, _, _, doc in rows}
    assert docs["train.epochs"] == "passes over the training split"
    assert docs["data.tfds_data_dir"].startswith("tfds:")


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path):
    import tfcnn.models

    recipe = recipe_lib.load_recipe(path)
    assert recipe.model.name in tfcnn.models.list_models()


@pytest.mark.parametrize("value, mode", [
    ('"random"', recipe_lib.CropMode.RANDOM),
    ('"inception"', recipe_lib.CropMode.INCEPTION),
    ('"none"', recipe_lib.CropMode.NONE),
])
def test_crop_mode(value, mode):
    recipe = recipe_lib.recipe_from_dict({}, [f"augment.crop={value}"])
    assert recipe.augment.crop is mode
    assert recipe_lib.AugmentConfig(crop=mode.value).crop is mode
    assert "crop = \"" + mode.value + "\"" in recipe_lib.dump_toml(recipe)


@pytest.mark.parametrize("value", ['"centre"', "1", "[true]", "true"])
def test_bad_crop_mode_is_named(value):
    with pytest.raises(RecipeError,
                       match="augment.crop must be one of random, "
                             "inception, none"):
        recipe_lib.recipe_from_dict({}, [f"augment.crop={value}"])


def test_crop_modes_are_listed_by_keys():
    rows = {key: (kind, default, doc)
            for key, kind, default, doc in recipe_lib.key_docs()}
    kind, default, doc = rows["augment.crop"]
    assert kind == "random|inception|none" and default == "random"
    assert "inception" in doc and "true/false" not in doc


def test_crop_mode_of_a_config_built_in_python():
    assert recipe_lib.AugmentConfig(crop="inception").crop is (
        recipe_lib.CropMode.INCEPTION)
    with pytest.raises(RecipeError, match="augment.crop must be one of "
                                          "random, inception, none"):
        recipe_lib.AugmentConfig(crop=True)


def test_augment_scale_range_is_checked():
    with pytest.raises(RecipeError, match="scale_min=2.0, scale_max=1.0"):
        recipe_lib.AugmentConfig(scale_min=2.0, scale_max=1.0)
    assert recipe_lib.AugmentConfig(crop="none").crop is (
        recipe_lib.CropMode.NONE)


@pytest.mark.parametrize("section, line, close", [
    ("data", "validation_fraction = 0.2", "data.validation_split"),
    ("export", "export_dri = \"exports\"", "export.export_dir")])
def test_an_unknown_key_names_the_closest_known_one(tmp_path, section,
                                                    line, close):
    path = tmp_path / "typo.toml"
    path.write_text(f"[{section}]\n{line}\n")
    with pytest.raises(RecipeError, match=f"did you mean {re.escape(close)}"):
        recipe_lib.load_recipe(path)


def test_an_unknown_key_far_from_any_gets_the_list(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text("[data]\nzzz = 1\n")
    with pytest.raises(RecipeError, match="unknown recipe key data.zzz "
                                          r"\(known in data: ") as error:
        recipe_lib.load_recipe(path)
    assert "did you mean" not in str(error.value)
