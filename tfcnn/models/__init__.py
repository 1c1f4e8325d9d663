"""Model zoo. Every model module is imported here so that it registers itself.

>>> import tfcnn.models
>>> model = tfcnn.models.build("lenet5", input_shape=(28, 28, 1),
...                            num_classes=10)
"""

from tfcnn.models import alexnet  # noqa: F401  (alexnet, alexnet_one_tower)
from tfcnn.models import applications  # noqa: F401  (convnext_tiny, ...)
from tfcnn.models import cnn1d  # noqa: F401  (cnn1d, textcnn)
from tfcnn.models import deeplab  # noqa: F401  (deeplabv3_resnet18/50)
from tfcnn.models import deeplabv3plus  # noqa: F401  (and fcn8s_backbone)
from tfcnn.models import dilated  # noqa: F401  (dilation8)
from tfcnn.models import fcn  # noqa: F401  (fcn32s/16s/8s, fcn8s_*)
from tfcnn.models import googlenet  # noqa: F401  (googlenet)
from tfcnn.models import lenet  # noqa: F401  (registers lenet5)
from tfcnn.models import resnet  # noqa: F401  (resnet18 ... 152, resnet50_gn)
from tfcnn.models import vgg  # noqa: F401  (vgg11, vgg13, vgg16, vgg19)
from tfcnn.models.registry import build
from tfcnn.models.registry import describe
from tfcnn.models.registry import get_builder
from tfcnn.models.registry import list_models
from tfcnn.models.registry import model_task
from tfcnn.models.registry import register_model
from tfcnn.models.registry import register_variant

__all__ = ["build", "describe", "get_builder", "list_models", "model_task",
           "register_model", "register_variant"]
