"""GoogLeNet: the paper's Table 1, naive and reduced modules, aux heads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcnn.layers
import tfcnn.models
from tests.models import zoo_cases
from tfcnn.blocks.inception import InceptionSpec
from tfcnn.blocks.inception import inception_module
from tfcnn.models.googlenet import GOOGLENET_SPEC

# Table 1: input depth, output size and depth, and the "params" column (K =
# 1,024 kernel weights). The column is rounded and has known slips (4c,
# 5a), so the kernels are checked exactly against the filter columns and
# the column itself within 8%.
TABLE = {
    "3a": (192, 28, 256, 159), "3b": (256, 28, 480, 380),
    "4a": (480, 14, 512, 364), "4b": (512, 14, 512, 437),
    "4c": (512, 14, 512, 463), "4d": (512, 14, 528, 580),
    "4e": (528, 14, 832, 840), "5a": (832, 7, 832, 1072),
    "5b": (832, 7, 1024, 1388),
}
TINY = dict(input_shape=(32, 32, 3), width_multiplier=1 / 8, num_classes=4)


def _reduced_kernels(depth, s):
    return (depth * (s.conv1x1 + s.reduce3x3 + s.reduce5x5 + s.pool_proj)
            + 9 * s.reduce3x3 * s.conv3x3 + 25 * s.reduce5x5 * s.conv5x5)


def _kernels(model, prefix):
    return sum(int(np.prod(layer.kernel.shape)) for layer in model.layers
               if layer.name.startswith(prefix)
               and isinstance(layer, keras.layers.Conv2D))


def test_googlenet_matches_table_1():
    model = zoo_cases.build_shapes_only("googlenet")
    specs = dict(GOOGLENET_SPEC)
    for module, (depth, size, out_depth, params_k) in TABLE.items():
        output = model.get_layer(f"inception_{module}_concat").output
        assert output.shape[1:] == (size, size, out_depth), module
        kernels = _kernels(model, f"inception_{module}_")
        assert kernels == _reduced_kernels(depth, specs[module]), module
        assert kernels / 1024 == pytest.approx(params_k, rel=0.08), module
    assert model.get_layer("conv2_conv").output.shape[1:] == (56, 56, 192)
    assert model.get_layer("dropout").rate == 0.4
    lrn = [layer.name for layer in model.layers
           if isinstance(layer, tfcnn.layers.LocalResponseNormalization)]
    assert lrn == ["pool1_norm", "conv2_norm"]
    # Kernels plus biases of every layer in Table 1 (1,000 classes).
    assert model.count_params() == 6_998_552


def test_auxiliary_classifiers_add_two_outputs():
    model = tfcnn.models.build("googlenet", aux_classifiers=True,
                               **dict(TINY, input_shape=(96, 96, 3)))
    assert [tensor.shape for tensor in model.outputs] == [(None, 4)] * 3
    assert model.get_layer("aux1_pool").input is model.get_layer(
        "inception_4a_concat").output
    assert model.get_layer("aux2_pool").input is model.get_layer(
        "inception_4d_concat").output
    assert model.get_layer("aux1_dropout").rate == 0.7
    # The paper's training loss: main + 0.3 x each auxiliary loss; every
    # auxiliary weight receives a gradient from it.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 96, 96, 3)).astype("float32")
    y = rng.integers(0, 4, 4)
    with tf.GradientTape() as tape:
        main, aux1, aux2 = model(x, training=True)
        loss = sum(weight * keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(y, output))
            for weight, output in ((1.0, main), (0.3, aux1), (0.3, aux2)))
    aux_weights = [w for w in model.trainable_weights
                   if w.path.startswith("aux")]
    assert len(aux_weights) == 2 * 2 * 3  # conv, fc, logits per head
    for grad in tape.gradient(loss, aux_weights):
        assert np.any(keras.ops.convert_to_numpy(grad) != 0)


def test_full_size_auxiliary_heads_have_the_papers_size():
    model = zoo_cases.build_shapes_only("googlenet", aux_classifiers=True)
    # 5x5/3 pooling of 14x14 maps -> 4x4x128 -> 1,024 -> 1,000.
    aux = [(512 * 128 + 128) + (4 * 4 * 128 * 1024 + 1024)
           + (1024 * 1000 + 1000),
           (528 * 128 + 128) + (4 * 4 * 128 * 1024 + 1024)
           + (1024 * 1000 + 1000)]
    assert model.count_params() == 6_998_552 + sum(aux)


def test_naive_module_has_no_reductions_and_passes_the_input_on():
    spec = InceptionSpec(8, 5, 12, 3, 4, 6)
    inputs = keras.Input((16, 16, 10))
    naive = keras.Model(inputs, inception_module(inputs, spec, reduce=False,
                                                 name="naive"))
    assert naive.output_shape == (None, 16, 16, 8 + 12 + 4 + 10)
    assert naive.count_params() == (10 * 8 + 8) + (9 * 10 * 12 + 12) + (
        25 * 10 * 4 + 4)
    names = [layer.name for layer in naive.layers]
    assert not any("reduce" in n or "proj" in n for n in names)
    keras.backend.clear_session()
    inputs = keras.Input((16, 16, 10))
    reduced = keras.Model(inputs, inception_module(inputs, spec,
                                                   name="reduced"))
    assert reduced.output_shape == (None, 16, 16, 8 + 12 + 4 + 6)
    assert _kernels(reduced, "reduced_") == _reduced_kernels(10, spec)


def test_naive_network_grows_its_width_module_by_module():
    model = tfcnn.models.build("googlenet", inception="naive", **TINY)
    width = 192 // 8
    for module, spec in GOOGLENET_SPEC:
        if spec is None:
            continue
        width += (spec.conv1x1 + spec.conv3x3 + spec.conv5x5) // 8
        output = model.get_layer(f"inception_{module}_concat").output
        assert output.shape[-1] == width, module


def test_batch_norm_variant_replaces_lrn():
    model = tfcnn.models.build("googlenet", norm="batch", **TINY)
    assert not any(isinstance(layer, tfcnn.layers.LocalResponseNormalization)
                   for layer in model.layers)
    convs = [layer for layer in model.layers
             if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(convs) == len(norms) == 57
