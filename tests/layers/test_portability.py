"""Every tfcnn layer at once: MirroredStrategy, XLA, SavedModel sans tfcnn.

One small model holds every layer (both LRN modes, explicit and "same"
transposed padding, the bilinear initializer), so the strategy, XLA
compilation and the export are each checked once for all of them.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tests import layer_contract
from tfcnn.layers import DilatedConv2D
from tfcnn.layers import GroupNormalization
from tfcnn.layers import LocalResponseNormalization
from tfcnn.layers import TransposedConv2D

# Run in a fresh interpreter where ``import tfcnn`` fails, as on a serving
# machine: the SavedModel must load and run from its graph alone.
_CHILD = textwrap.dedent("""
    import sys
    sys.modules["tfcnn"] = None  # any import of tfcnn now raises
    try:
        import tfcnn.layers  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("tfcnn is importable in the child")
    import numpy as np
    import tensorflow as tf

    export_dir, inputs_path, outputs_path = sys.argv[1:]
    loaded = tf.saved_model.load(export_dir)
    inputs = np.load(inputs_path)
    np.savez(outputs_path, **{name: loaded.serve(tf.constant(x)).numpy()
                              for name, x in inputs.items()})
    assert "tfcnn" not in {m.split(".")[0] for m, v in sys.modules.items()
                           if v is not None}
""")


def all_layers_model(input_shape=(None, None, 4)):
    inputs = keras.Input(input_shape, name="image")
    x = DilatedConv2D(8, 3, activation="relu", name="dilated")(inputs)
    x = GroupNormalization(groups=4, name="group_norm")(x)
    x = LocalResponseNormalization(alpha=1e-2, name="lrn")(x)
    x = LocalResponseNormalization(mode="intra_channel", size=3, alpha=1e-2,
                                   name="lrn_intra")(x)
    x = TransposedConv2D(8, 4, strides=2, padding="same",
                         kernel_initializer="bilinear", name="up")(x)
    x = TransposedConv2D(3, 3, strides=2, padding=1, output_padding=1,
                         name="up_explicit")(x)
    return keras.Model(inputs, x, name="all_layers")


@pytest.mark.slow
def test_mirrored_strategy_step_matches_single_device():
    layer_contract.assert_mirrored_step(
        lambda: all_layers_model((6, 6, 4)), (4, 6, 6, 4))


@pytest.mark.slow
def test_xla_compiled_step_matches_eager_graph_step():
    # Keras compiles with XLA by default ("auto") where it can, e.g. on GPU;
    # the hand-written gradients must compile and give the same step.
    x = layer_contract.random_input((2, 6, 6, 4))
    target = layer_contract.random_input((2, 24, 24, 3), seed=1)
    weights = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(0)
        model = all_layers_model((6, 6, 4))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse",
                      jit_compile=jit_compile)
        model.fit(x, target, batch_size=2, epochs=1, verbose=0)
        weights.append(model.get_weights())
    for plain, compiled in zip(*weights):
        np.testing.assert_allclose(compiled, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_saved_model_runs_where_tfcnn_is_not_importable(tmp_path):
    keras.utils.set_random_seed(0)
    model = all_layers_model()
    export_dir = str(tmp_path / "saved_model")
    model.export(export_dir, verbose=False)
    # Unknown batch and spatial sizes: two different shapes.
    inputs = {"small": layer_contract.random_input((1, 5, 7, 4), seed=1),
              "large": layer_contract.random_input((3, 12, 9, 4), seed=2)}
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run(
        [sys.executable, "-c", _CHILD, export_dir,
         str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz")],
        check=True, cwd=tmp_path, env=env, timeout=300)
    outputs = np.load(tmp_path / "outputs.npz")
    for name, x in inputs.items():
        expected = keras.ops.convert_to_numpy(model(x))
        assert outputs[name].shape == expected.shape
        np.testing.assert_allclose(outputs[name], expected, rtol=1e-5,
                                   atol=1e-6)
