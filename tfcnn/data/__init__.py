"""Data layer: TFRecord schema, ingest, statistics, readers and the tf.data pipeline."""
