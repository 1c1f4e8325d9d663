"""Model zoo. Every model module is imported here so that it registers itself.

>>> import tfcnn.models
>>> model = tfcnn.models.build("lenet5", input_shape=(28, 28, 1), num_classes=10)
"""

from tfcnn.models import lenet  # noqa: F401  (registers lenet5)
from tfcnn.models.registry import build
from tfcnn.models.registry import get_builder
from tfcnn.models.registry import list_models
from tfcnn.models.registry import register_model

__all__ = ["build", "get_builder", "list_models", "register_model"]
