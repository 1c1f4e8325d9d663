"""DeepLabV3+ and FCN-8s on backbones (tfcnn.models.deeplabv3plus)."""

import keras
import numpy as np
import pytest

import tfcnn.models


@pytest.mark.parametrize("backbone", ["small", "resnet18", "mobilenet_v2",
                                      "convnext_tiny"])
def test_deeplabv3plus_scores_every_pixel_at_any_size(backbone):
    model = tfcnn.models.build(
        "deeplabv3plus", num_classes=3, backbone=backbone, aspp_filters=8,
        decoder_filters=8, skip_filters=4, width_multiplier=1 / 16)
    y = np.array(model(np.zeros((1, 48, 80, 3), "float32")))
    assert y.shape == (1, 48, 80, 3)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)
    # The decoder joins the stride-16 ASPP output and stride-4 features.
    concat = model.get_layer("decoder_concat")
    assert [tuple(t.shape[1:3]) for t in concat.input] == [(None, None)] * 2
    sizes = keras.Model(model.inputs, concat.output)(
        np.zeros((1, 64, 64, 3), "float32")).shape
    assert sizes[1:3] == (16, 16)


def test_fcn8s_on_an_application_backbone():
    model = tfcnn.models.build("fcn8s_backbone", num_classes=2,
                               backbone="mobilenet")
    assert model(np.zeros((1, 64, 96, 3), "float32")).shape == (1, 64, 96, 2)


def test_unknown_backbone_is_named():
    with pytest.raises(ValueError, match="Received: backbone='inception_v3'"):
        tfcnn.models.build("deeplabv3plus", backbone="inception_v3")
