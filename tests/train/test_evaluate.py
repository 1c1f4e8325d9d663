"""Tests of tfcnn.train.evaluate: metrics of a trained model."""

import json

import pytest

from tests.train.conftest import tiny_recipe
from tfcnn.errors import DataError
from tfcnn.train import evaluate


@pytest.fixture
def trained(trained_run):
    return trained_run[0]


def test_evaluate_reports_json_ready_metrics(trained):
    metrics = evaluate.evaluate(trained, verbose=False)
    json.dumps(metrics)  # JSON-ready
    # Synthetic held-out set: max(batch, 64 // 10) = 16 images.
    assert metrics["split"] == "validation"
    assert metrics["num_examples"] == 16
    assert 0.0 <= metrics["accuracy"] <= 1.0
    # 4 classes: the top-5 would hold every class, so it is not reported.
    assert "top5_accuracy" not in metrics
    assert "top-5" not in evaluate.format_metrics(metrics)
    assert metrics["loss"] > 0.0
    assert "ten_crop_accuracy" not in metrics


def test_evaluate_agrees_with_the_last_validation(trained):
    record = json.loads(
        open(f"{trained.train.model_dir}/training.json").read())
    metrics = evaluate.evaluate(trained, verbose=False)
    assert metrics["accuracy"] == pytest.approx(
        record["metrics"]["val_accuracy"], abs=1e-6)
    assert metrics["loss"] == pytest.approx(record["metrics"]["val_loss"],
                                            rel=1e-4)


def test_ten_crop_figures_when_asked(trained):
    recipe = trained.replace(evaluate={"ten_crop": True})
    metrics = evaluate.evaluate(recipe, verbose=False)
    for key in ("ten_crop_accuracy", "ten_crop_loss"):
        assert key in metrics
    assert "ten_crop_top5_accuracy" not in metrics  # 4 classes
    # Trained without flips (augment.flip = false): the five crops alone.
    assert metrics["views"] == 5
    assert "5-crop top-1" in evaluate.format_metrics(metrics)
    flipped = evaluate.evaluate(recipe.replace(augment={"flip": True}),
                                verbose=False)
    assert flipped["views"] == 10
    assert "10-crop top-1" in evaluate.format_metrics(flipped)


def test_format_metrics_is_one_line():
    text = evaluate.format_metrics({
        "split": "test", "num_examples": 360, "accuracy": 0.975,
        "top5_accuracy": 1.0, "loss": 0.0812})
    assert text == ("test (360 images): top-1 97.50%, top-5 100.00%, "
                    "loss 0.0812")


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="run `tfcnn train` first"):
        evaluate.evaluate(tiny_recipe(tmp_path / "none"), verbose=False)
