"""End to end: digits 0-4 -> fine-tuned on 10 images per class of 5-9, run
as the README says; the fine-tuned model evaluates (10-crop too), exports
with its clean-process check, and serves."""

import base64
import json
import re
import subprocess
import sys

import pytest
import requests


def _tfcnn(*args, cwd):
    result = subprocess.run(
        [sys.executable, "-m", "tfcnn.cli", *args], cwd=cwd,
        capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_finetuned_digits_evaluate_export_and_serve(tmp_path):
    _tfcnn("run", "digits_0to4", "--set", "train.epochs=8", cwd=tmp_path)
    tuned = _tfcnn("run", "finetune_digits", "--set", "train.epochs=12",
                   "--set", "train.head_epochs=4",
                   "--set", "evaluate.ten_crop=true", cwd=tmp_path)
    # conv1 and conv2 from the 0-4 run (model.weights_until); fc1, fc2 and
    # the classifier start fresh and are the head of the first stage.
    top = "fc1/kernel, fc1/bias, fc2/kernel, fc2/bias, logits/kernel, " \
          "logits/bias"
    assert (f"train: loaded 4 of 10 weight tensors from runs/digits_0to4; "
            f"new: {top}; unused from the file: {top}") in tuned.stderr, \
        tuned.stderr
    assert re.search(r"train: epochs 1-4 train head: 58,709 trainable, "
                     r"2,872 frozen, 0 non-trainable parameters",
                     tuned.stderr)
    assert "train: epochs 5-12 train all: 61,581 trainable, 0 " \
        "non-trainable parameters" in tuned.stderr
    metrics = json.loads(
        (tmp_path / "runs/finetune_digits/metrics.json").read_text())
    assert metrics["num_examples"] == 180  # every test image of 5-9
    assert metrics["accuracy"] > 0.5, metrics  # chance is 0.2
    assert 0.2 < metrics["ten_crop_accuracy"] <= 1.0, metrics
    assert re.search(r"^\[done\] export: published SavedModel",
                     tuned.stdout, re.M), tuned.stdout

    from tfcnn.serve import predict
    from tfcnn.serve import server as server_lib

    image = sorted((tmp_path / "data/digits_5to9_10/test/7").glob("*.png"))[0]
    local = predict.predict(tmp_path / "saved_models/digits_finetuned",
                            [str(image)], top_k=3)["predictions"][0]
    with server_lib.BackgroundServer(tmp_path / "saved_models") as server:
        answer = requests.post(
            server.url + "/v1/models/digits_finetuned:predict",
            json={"instances": [{"b64": base64.b64encode(
                image.read_bytes()).decode()}]}, timeout=60).json()
    served = answer["predictions"][0]
    assert [name for name in served["class_names"]] == local["class_names"]
    assert set(local["class_names"]) <= {"5", "6", "7", "8", "9"}
