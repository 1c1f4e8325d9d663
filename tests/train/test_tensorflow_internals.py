"""The private TensorFlow calls of tfcnn.train.strategy.

``_configure_coordination`` configures TensorFlow's coordination service
itself, with the join and heartbeat timeouts, through the call
``MultiWorkerMirroredStrategy`` makes (``tensorflow.python``, not a public
API). These tests fail when TensorFlow changes that call, its arguments or
the helpers around it; setup.cfg pins TensorFlow to the minor version
they passed on.
"""

import inspect

import tensorflow as tf
from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
from tensorflow.python.distribute import multi_worker_util
from tensorflow.python.eager import context

from tfcnn.train import strategy as strategy_lib


def test_configure_coordination_service_takes_the_timeouts():
    parameters = inspect.signature(
        context.Context.configure_coordination_service).parameters
    assert {"service_type", "service_leader", "coordinated_jobs",
            "cluster_register_timeout_in_ms",
            "heartbeat_timeout_in_ms"} <= set(parameters)
    # tfcnn skips configuring when the strategy (or a test) already has.
    assert isinstance(
        inspect.getattr_static(context.Context, "coordination_service"),
        property)


def test_the_strategy_configures_through_the_same_call():
    source = inspect.getsource(
        tf.distribute.MultiWorkerMirroredStrategy)
    source += inspect.getsource(inspect.getmodule(
        tf.distribute.MultiWorkerMirroredStrategy))
    assert "configure_coordination_service" in source
    assert "coordination_leader" in source


def test_coordination_leader_and_jobs_of_a_cluster():
    spec = tf.train.ClusterSpec({"chief": ["localhost:1"],
                                 "worker": ["localhost:2", "localhost:3"]})
    assert multi_worker_util.coordination_leader(spec) == (
        "/job:chief/replica:0/task:0")
    job = coordination_config_pb2.CoordinatedJob(name="worker", num_tasks=2)
    assert (job.name, job.num_tasks) == ("worker", 2)
    assert "_configure_coordination" in vars(strategy_lib)
