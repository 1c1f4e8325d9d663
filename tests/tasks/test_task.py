"""Tests of tfcnn.tasks.task: what every task shares."""

import pytest

from tfcnn import recipe as recipe_lib
from tfcnn.tasks import task as task_lib


@pytest.mark.parametrize("augment, weights, expected", [
    ({"mean": "auto", "pca_lighting": 0.0}, "", True),
    ({"mean": "auto", "pca_lighting": 0.0}, "imagenet", False),
    ({"mean": "imagenet", "pca_lighting": 0.1}, "", False),
    ({"mean": "none", "pca_lighting": 0.1}, "", True),
])
def test_reads_stats_resolves_auto_before_asking(augment, weights,
                                                 expected):
    recipe = recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic"}, "augment": augment,
        "model": {"name": "resnet50", "weights": weights}})
    assert task_lib.reads_stats(recipe) is expected
    assert task_lib.resolved_augment(recipe).mean is not (
        recipe_lib.MeanMode.AUTO)
