"""A finished run is left alone: training it again must be asked for."""

from tests.train.conftest import tiny_recipe
from tfcnn import cli
from tfcnn.train import fit


def _outputs(model_dir):
    """Model bytes and event files: what a second training would change."""
    return ((model_dir / "model.keras").read_bytes(),
            sorted(p.name for p in (model_dir / "logs").rglob("events.*")))


def test_finished_run_is_not_trained_again(tmp_path, capsys):
    recipe = tiny_recipe(tmp_path / "run", epochs=1)
    fit.train(recipe, verbose=0)
    before = _outputs(tmp_path / "run")
    capsys.readouterr()

    summary = fit.train(recipe, verbose=0)

    assert _outputs(tmp_path / "run") == before
    assert summary["skipped"] and summary["epochs_run"] == 0
    # Called from Python, the line names the Python argument; the library
    # returns it and prints nothing.
    assert "left as it is (overwrite=True or" in summary.line, summary.line
    assert capsys.readouterr().out == ""


def test_overwrite_trains_again_with_one_set_of_logs(tmp_path):
    recipe = tiny_recipe(tmp_path / "run", epochs=1)
    fit.train(recipe, verbose=0)
    model_bytes, events = _outputs(tmp_path / "run")

    summary = fit.train(recipe, verbose=0, overwrite=True)

    assert summary["epochs_run"] == 1 and not summary.get("skipped")
    new_bytes, new_events = _outputs(tmp_path / "run")
    assert new_bytes != model_bytes
    # The old run's event files are gone: one run per logs/ folder.
    assert len(new_events) == len(events) and new_events != events


def test_cli_train_leaves_a_finished_run(tmp_path, capsys):
    from tfcnn import recipe as recipe_lib

    recipe = tiny_recipe(tmp_path / "run", epochs=1)
    path = tmp_path / "recipe.toml"
    path.write_text(recipe_lib.dump_toml(recipe))
    assert cli.main(["train", str(path)]) == 0
    before = _outputs(tmp_path / "run")
    capsys.readouterr()

    assert cli.main(["train", str(path)]) == 0

    assert _outputs(tmp_path / "run") == before
    out = capsys.readouterr().out
    assert "is complete" in out and "(--overwrite or" in out, out


def test_more_epochs_are_another_recipe(tmp_path, capsys):
    # The backup of a finished run is gone: more epochs would restart from
    # scratch under another schedule, so they are refused, not resumed.
    import pytest

    from tfcnn.errors import RecipeError

    recipe = tiny_recipe(tmp_path / "run", epochs=1)
    fit.train(recipe, verbose=0)
    before = _outputs(tmp_path / "run")

    with pytest.raises(RecipeError, match="train.epochs = 1 there, 2 here"):
        fit.train(recipe.replace(train={"epochs": 2}), verbose=0)
    assert _outputs(tmp_path / "run") == before
