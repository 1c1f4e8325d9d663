"""tfcnn: a TensorFlow/Keras toolkit for convolutional networks on images.

Importing ``tfcnn`` has no side effects: TensorFlow is imported by the
subpackages that need it (``tfcnn.layers``, ``tfcnn.models``, ``tfcnn.data``,
...), not here.
"""

__version__ = "0.1.0"
