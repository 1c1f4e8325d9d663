"""Tests of the argument checks the model builders share."""

import re

import pytest

import tfcnn.models


@pytest.mark.parametrize("name,stride", [
    ("fcn8s", 32), ("fcn8s_resnet18", 32), ("fcn8s_small", 32),
    ("dilation8", 8)])
def test_dense_prediction_sides_must_be_multiples_of_the_stride(name,
                                                                stride):
    shape = (stride * 4 + 4, stride * 4, 3)
    with pytest.raises(ValueError, match=re.escape(
            f"multiples of {stride}. Received: input_shape={shape}")):
        tfcnn.models.build(name, input_shape=shape, num_classes=3)


@pytest.mark.parametrize("name", ["fcn8s", "dilation8", "vgg16", "alexnet"])
@pytest.mark.parametrize("option,value,match", [
    ("fc_units", 0, "fc_units must be a positive int. Received: fc_units=0"),
    ("fc_units", 2.5, "Received: fc_units=2.5"),
    ("dropout", 1.0, "dropout must be a number in \\[0, 1\\)"),
])
def test_fully_connected_options_are_checked(name, option, value, match):
    with pytest.raises(ValueError, match=match):
        tfcnn.models.build(name, num_classes=3, **{option: value})
