"""Each private-Keras patch in tfcnn still has a reason to exist.

Every test reproduces the Keras behaviour a patch works around, without
the patch, and fails once Keras no longer shows it: then the patch can go
and the Keras pin in setup.cfg can widen.
"""

import json
import subprocess
import sys

import keras
import pytest

from tests.train.conftest import start_workers

# One worker of a two-worker MultiWorkerMirroredStrategy on localhost: runs
# Keras' own code where tfcnn patches it, and reports what failed.
WORKER = '''\
import json

import tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras
import numpy as np
from keras.src.backend.tensorflow import trainer

results = {}
keras_reduce = trainer.reduce_per_replica


@tf.function
def reduce_a_scalar_log():
    values = strategy.run(lambda: tf.constant(1.0))
    return keras_reduce(values, strategy, "auto")


try:
    reduce_a_scalar_log()
    results["reduce_scalar_fails"] = ""
except Exception as error:
    results["reduce_scalar_fails"] = str(error)[-400:]

from tfcnn.train import fit
from tfcnn.train import strategy as strategy_lib

strategy_lib._fix_keras_multi_worker_mean()


def compiled_model():
    with strategy.scope():
        inputs = keras.Input((4, 4, 3), dtype="uint8")
        x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(2)(x))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
    return model


dataset = tf.data.Dataset.from_tensors(
    (np.zeros((4, 4, 4, 3), np.uint8), np.zeros(4, np.int32))).repeat(2)
try:
    compiled_model().fit(dataset, epochs=1, verbose=0)
    results["fit_uint8_fails"] = ""
except Exception as error:
    results["fit_uint8_fails"] = str(error)[-400:]
model = compiled_model()
with strategy.scope():
    fit._build_before_fit(model, dataset)
model.fit(dataset, epochs=1, verbose=0)
results["fit_after_build_before_fit"] = True
print(json.dumps(results))
'''


@pytest.fixture(scope="module")
def two_worker_results(tmp_path_factory):
    script = tmp_path_factory.mktemp("patches") / "worker.py"
    script.write_text(WORKER)
    processes = start_workers([sys.executable, str(script)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        outputs = [p.communicate(timeout=180) for p in processes]
    finally:
        for p in processes:
            p.kill()
            p.wait()
    for process, (_, error) in zip(processes, outputs):
        assert process.returncode == 0, error[-3000:]
    return json.loads(outputs[0][0].strip().splitlines()[-1])


@pytest.mark.slow
def test_keras_still_fails_to_average_scalar_logs_over_workers(
        two_worker_results):
    # The reason for tfcnn.train.strategy._fix_keras_multi_worker_mean.
    assert "input with 0 dimensions" in (
        two_worker_results["reduce_scalar_fails"]), (
        "Keras now reduces scalar logs under MultiWorkerMirroredStrategy: "
        "remove _fix_keras_multi_worker_mean and widen the keras pin")


@pytest.mark.slow
def test_keras_still_fails_to_build_from_a_distributed_uint8_batch(
        two_worker_results):
    # The reason for tfcnn.train.fit._build_before_fit.
    assert "PerReplica" in two_worker_results["fit_uint8_fails"], (
        "Keras now builds from a distributed uint8 batch: remove "
        "fit._build_before_fit and widen the keras pin")
    assert two_worker_results["fit_after_build_before_fit"]


def test_keras_still_keeps_variables_of_a_stateless_scope_pending():
    # The reason for the global_state reset in tfcnn.models.registry.describe.
    from keras.src.backend.common import global_state

    pending = "uninitialized_variables"
    before = list(global_state.get_global_attribute(pending) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            keras.layers.Dense(3).build((None, 2))
        left = list(global_state.get_global_attribute(pending) or [])
    finally:
        global_state.set_global_attribute(pending, before)
    assert len(left) > len(before), (
        "Keras no longer keeps a stateless scope's variables pending: "
        "remove the global_state reset in registry.describe")
