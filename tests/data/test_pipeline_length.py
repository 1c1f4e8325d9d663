"""make_dataset with num_examples: a dataset that knows its length."""

import warnings

import keras
import pytest

from tests.data import image_files
from tfcnn.data import pipeline
from tfcnn.data.classification_ingest import ingest
from tfcnn.data.classification_pipeline import make_dataset
from tfcnn.data.manifest import Manifest


@pytest.mark.parametrize("training, batches", [(True, 3), (False, 4)])
def test_length_is_known_and_fit_does_not_run_out(tmp_path, training,
                                                   batches):
    image_files.make_class_folders(tmp_path / "src", ("a", "b"), 7)
    ingest(tmp_path / "src", tmp_path / "shards", workers=1,
           validation_split=0.0, progress=False)
    files = pipeline.list_shards(tmp_path / "shards", "train")
    count = Manifest.load(tmp_path / "shards").count("train")
    dataset = make_dataset(files, resize_size=8, batch_size=4,
                           training=training, num_examples=count)
    # 14 images: 3 full batches in training, 4 batches in evaluation.
    assert int(dataset.cardinality()) == batches
    assert sum(1 for _ in dataset) == batches

    model = keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(dataset, epochs=2, verbose=0)
    assert not [w for w in caught if "ran out of data" in str(w.message)]
