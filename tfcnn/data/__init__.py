"""Data layer: TFRecord schema, ingest, statistics, readers, tf.data pipeline.

The common entry points are re-exported here and loaded on first use, so
``import tfcnn.data`` alone does not import TensorFlow:

(Ingest is ``tfcnn.tasks.ingest(...)``, which hands each source to its
task's ingest.)

>>> from tfcnn.data import read_tfrecords, make_dataset, Manifest
"""

import importlib

_EXPORTS = {
    "Manifest": "tfcnn.data.manifest",
    "compute_stats": "tfcnn.data.stats",
    "load_stats": "tfcnn.data.stats",
    "DatasetStats": "tfcnn.data.stats",
    "read_shards": "tfcnn.data.readers",
    "read_tfrecords": "tfcnn.data.readers",
    "read_tfds": "tfcnn.data.readers",
    "make_dataset": "tfcnn.data.classification_pipeline",
    "make_distributed_dataset": "tfcnn.data.classification_pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tfcnn.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
