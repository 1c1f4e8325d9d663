"""Test session setup.

Runs before TensorFlow initializes: quiet logs, oneDNN on (1.2-1.6x faster on
these CPUs), and the CPU split into two logical devices so that
MirroredStrategy code runs with two replicas on a machine without GPUs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0],
    [tf.config.LogicalDeviceConfiguration(),
     tf.config.LogicalDeviceConfiguration()])


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts with float32 policy and fresh layer name counters."""
    import keras

    yield
    keras.config.set_dtype_policy("float32")
    # No forced gc.collect() (free_memory): it cost 0.3-1.3 s a test, and
    # Python's own collector frees the tiny test models soon enough.
    keras.backend.clear_session(free_memory=False)


def pytest_collection_modifyitems(items):
    """Modules with a slow test run first, each keeping its own order.

    Under pytest-xdist (``-n 2 --dist loadscope``, setup.cfg) a module
    goes to one worker as a whole, in collection order: the long modules
    then run side by side while the short ones fill in, instead of one
    long module running alone at the end.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)
