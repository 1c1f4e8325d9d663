"""Tiny tfds datasets built and prepared on local disk (no download).

Their builder classes are not registered, so the readers find them from
the prepared files alone, as for a dataset whose builder code is elsewhere.
"""


def prepare(data_dir, class_name, features, splits):
    """Builds and prepares a dataset; tfds names it from ``class_name``
    ("TfcnnTinyImages" -> "tfcnn_tiny_images").

    Args:
        data_dir: path, tfds' data folder.
        class_name: str, the builder's CamelCase class name.
        features: dict feature name -> ``tfds.features`` feature; "image"
            and "label" are the supervised keys.
        splits: dict split name -> dict key -> example dict (tfds orders
            the examples by their keys' hashes).
    """
    import tensorflow_datasets as tfds

    def info(builder):
        return tfds.core.DatasetInfo(
            builder=builder, features=tfds.features.FeaturesDict(features),
            supervised_keys=("image", "label"))

    def split_generators(builder, dl_manager):
        del dl_manager  # nothing to download
        return {split: builder._generate_examples(examples)
                for split, examples in splits.items()}

    def generate_examples(builder, examples):
        del builder
        for key, example in examples.items():
            yield str(key), example

    builder = type(class_name, (tfds.core.GeneratorBasedBuilder,), {
        # tfds 4.9.10 looks up a packaged builder's source file through
        # importlib_resources, which tensorflow-datasets does not install;
        # builders defined in __main__ skip that lookup.
        "__module__": "__main__",
        "VERSION": tfds.core.Version("1.0.0"),
        "_info": info,
        "_split_generators": split_generators,
        "_generate_examples": generate_examples,
    }, skip_registration=True)
    builder(data_dir=str(data_dir)).download_and_prepare()
