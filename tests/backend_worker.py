"""Runs tfcnn's model half under another Keras backend, TensorFlow blocked.

``tests/test_backends.py`` writes the cases under TensorFlow into a folder
(``cases.json``, ``inputs.npz``, one ``.weights.h5`` per registered model
and one ``.keras`` file per layer case), then runs, in a subprocess,

    KERAS_BACKEND=jax python -m tests.backend_worker FOLDER

which imports ``tfcnn.layers``, ``tfcnn.blocks``, ``tfcnn.models`` and
``tfcnn.augment`` with ``sys.modules["tensorflow"] = None`` (any TensorFlow
import fails), builds every registered model by name with its tiny options
(``tests/models/zoo_cases.py``), loads the TensorFlow weights, and writes
each case's outputs and gradients to ``FOLDER/results.npz``. One process
for all cases keeps the start-up cost (Keras, JAX) to one.
"""

import sys

sys.modules["tensorflow"] = None

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.backend.common import global_state  # noqa: E402

import tfcnn.augment  # noqa: E402, F401  (registers the layers)
import tfcnn.blocks  # noqa: E402, F401
import tfcnn.layers  # noqa: E402, F401
import tfcnn.models  # noqa: E402
from tests.models import zoo_cases  # noqa: E402


def build(case, folder):
    """The case's model: a registered one with TF's weights, or a file."""
    if case["kind"] != "model":
        return keras.saving.load_model(folder / f"{case['name']}.keras",
                                       compile=False)
    # Skip drawing random initial weights (under JAX each new shape
    # compiles a random kernel): every value comes from TF's file.
    with keras.StatelessScope(initialize_variables=False):
        model = tfcnn.models.build(
            case["name"], **zoo_cases.tiny_options(case["name"]))
    model.load_weights(folder / f"{case['name']}.weights.h5")
    # Every value is assigned now: nothing left for Keras to initialize
    # later (it would refuse an assigned variable).
    global_state.set_global_attribute("uninitialized_variables", [])
    return model


def outputs_and_gradients(model, xs, rs, training):
    """Outputs, and gradients of ``sum(output * r)`` by the weights and
    float inputs (``rs`` None: outputs only), from one compiled call."""
    backend = keras.backend.backend()
    if backend != "jax":
        raise SystemExit(f"backend_worker: no gradients for {backend!r}")
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    floats = [i for i, x in enumerate(xs) if x.dtype.kind == "f"]

    def forward(weights, float_inputs):
        args = list(xs)
        for i, value in zip(floats, float_inputs):
            args[i] = value
        outputs, _ = model.stateless_call(
            weights, non_trainable, args if len(args) > 1 else args[0],
            training=training)
        return keras.tree.flatten(outputs)

    float_inputs = [xs[i] for i in floats]
    if rs is None:
        outputs = jax.jit(forward)(trainable, float_inputs)
        return [np.asarray(out) for out in outputs], []

    def loss(weights, float_inputs):
        outputs = forward(weights, float_inputs)
        return sum(jnp.sum(out * r) for out, r in zip(outputs, rs)), outputs

    (_, outputs), (weights, inputs) = jax.jit(jax.value_and_grad(
        loss, argnums=(0, 1), has_aux=True))(trainable, float_inputs)
    return ([np.asarray(out) for out in outputs],
            [np.asarray(g) for g in list(weights) + list(inputs)])


def main(folder):
    folder = Path(folder)
    cases = json.loads((folder / "cases.json").read_text())
    arrays = np.load(folder / "inputs.npz")
    results = {}
    for case in cases:
        model = build(case, folder)
        name = case["name"]
        xs = [arrays[f"{name}/x{i}"] for i in range(case["num_inputs"])]
        training = case["training"]
        if case["gradients"]:
            rs = [arrays[f"{name}/r{i}"] for i in range(case["num_outputs"])]
            outputs, grads = outputs_and_gradients(model, xs, rs, training)
        elif training:
            # Random layers draw from their SeedGenerator: call eagerly.
            outputs = [keras.ops.convert_to_numpy(out)
                       for out in keras.tree.flatten(model(
                           xs if len(xs) > 1 else xs[0], training=True))]
            grads = []
        else:
            outputs, grads = outputs_and_gradients(model, xs, None, False)
        for i, out in enumerate(outputs):
            results[f"{name}/out{i}"] = out
        for i, grad in enumerate(grads):
            results[f"{name}/grad{i}"] = grad
        keras.backend.clear_session()
    np.savez(folder / "results.npz", **results)
    print(f"backend_worker: {len(cases)} cases under "
          f"{keras.backend.backend()}")


if __name__ == "__main__":
    main(sys.argv[1])
