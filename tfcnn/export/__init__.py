"""Export: trained Keras models -> self-contained SavedModels for serving.

``export_model`` (in ``tfcnn.export.publish``) is the entry point. It is
loaded on first use, so ``tfcnn.export.layout`` (the TF Serving directory
layout, used by the server) can be imported without TensorFlow.

>>> from tfcnn.export import export_model
>>> export_model("runs/lenet", export_dir="saved_models", name="digits")
PosixPath('saved_models/digits/1')
"""

__all__ = ["export_model"]


def __getattr__(name):
    if name == "export_model":
        from tfcnn.export.publish import export_model

        return export_model
    raise AttributeError(f"module 'tfcnn.export' has no attribute {name!r}")
