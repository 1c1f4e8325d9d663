"""Fixtures of the training tests: tiny synthetic recipes."""

import pytest

from tfcnn import recipe as recipe_lib


def tiny_recipe(model_dir, **train):
    """A recipe that trains LeNet-5 on 16x16 synthetic images in seconds.

    Args:
        model_dir: str or Path, ``train.model_dir``.
        **train: ``train`` keys to override.

    Returns:
        ``tfcnn.recipe.Recipe``.
    """
    return recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic", "image_size": 16, "resize_size": 20,
                 "synthetic_classes": 4, "synthetic_images": 64},
        "augment": {"flip": False, "pca_lighting": 0.0, "mean": "none"},
        "model": {"name": "lenet5", "options": {"activation": "relu"}},
        "train": {"epochs": 2, "batch_size": 16, "learning_rate": 0.05,
                  "model_dir": str(model_dir), "backup_steps": 2,
                  "histogram_freq": 1, **train},
    })


@pytest.fixture
def make_recipe(tmp_path):
    """``make_recipe(**train)`` -> a tiny recipe writing under tmp_path."""

    def make(**train):
        return tiny_recipe(tmp_path / "run", **train)

    return make
