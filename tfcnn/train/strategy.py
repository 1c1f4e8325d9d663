"""Distribution strategies for training: which devices, which worker writes.

``make_strategy(config)`` turns ``train.strategy`` into a ``tf.distribute``
strategy:

- ``auto``: ``MirroredStrategy`` over every visible GPU; on a machine
  without GPUs, ``OneDeviceStrategy`` on the CPU.
- ``mirrored``: ``MirroredStrategy`` over ``train.devices`` (all GPUs when
  empty).
- ``multi_worker``: ``MultiWorkerMirroredStrategy`` over the cluster that
  ``train.cluster`` names: ``TF_CONFIG``, a Slurm job step or a Kubernetes
  Indexed Job (``tfcnn.train.cluster``). Collective ops must be configured
  before any other TensorFlow op runs, so ``tfcnn.train.fit.train`` creates
  the strategy first thing.
- ``one_device``: ``OneDeviceStrategy`` on the first GPU, else the CPU.

The recipe's ``train.batch_size`` is the global batch: each of the ``R``
replicas sees ``batch_size / R`` images per step, and ``batch_size`` must be
a multiple of ``R``. Changing the number of replicas with the same recipe
therefore changes nothing in the optimisation (same global batch, same
learning rate); to keep the per-replica batch instead, raise
``train.batch_size`` and turn on ``train.scale_lr`` (see
``tfcnn.train.optimizers.effective_learning_rate``).

Under ``multi_worker`` every worker runs the same ``fit`` (the collective
all-reduce needs them all), but only the chief writes the run's files; the
other workers write to throw-away folders (``worker_dir``).

Under ``train.backend = "jax"`` (``tfcnn.train.backend``) no tf.distribute
strategy applies: ``auto`` and ``mirrored`` put
``keras.distribution.DataParallel`` over JAX's devices (every GPU, else
the CPU devices, as many as ``XLA_FLAGS=
--xla_force_host_platform_device_count=N`` makes), which splits each
global batch over them and keeps the weights replicated, as
``MirroredStrategy`` does; ``one_device`` trains on the first device, and
``multi_worker`` is refused with one line.
"""

import contextlib
import dataclasses
import faulthandler
import shutil
import tempfile

import tensorflow as tf

from tfcnn import console
from tfcnn.errors import RecipeError
from tfcnn.recipe import Strategy
from tfcnn.train import cluster as cluster_lib


@dataclasses.dataclass(frozen=True)
class Placement:
    """A strategy and this process's role in it.

    Attributes:
        strategy: the ``tf.distribute.Strategy``; under JAX a
            ``KerasDistribution`` (its ``scope()`` is where the model is
            built).
        num_replicas: int, replicas in sync over all workers.
        num_workers: int, worker processes (1 unless multi-worker).
        is_chief: bool, whether this process writes checkpoints, summaries
            and the trained model.
        task: str, ``"chief"`` or ``"<task_type>_<task_id>"``.
    """

    strategy: tf.distribute.Strategy
    num_replicas: int
    num_workers: int
    is_chief: bool
    task: str


def make_strategy(config):
    """Creates the strategy of a ``TrainConfig`` and says who is chief.

    Call it before any other TensorFlow op when ``config.strategy`` is
    ``multi_worker``: collective ops can only be configured on a fresh
    runtime.

    Args:
        config: ``tfcnn.recipe.TrainConfig``.

    Returns:
        a ``Placement``.

    Raises:
        RecipeError: no cluster for ``multi_worker``, a device that
            does not exist, or a batch size that is not a multiple of the
            number of replicas.
    """
    from tfcnn.train import backend

    if not backend.is_tensorflow():
        return _keras_distribution(config)
    kind = config.strategy
    if kind is Strategy.MULTI_WORKER:
        return _multi_worker(config)
    if kind is Strategy.MIRRORED:
        devices = list(config.devices) or _gpu_names() or None
        _check_devices(devices)
        strategy = mirrored(devices)
    elif kind is Strategy.ONE_DEVICE:
        if config.devices:
            _check_devices(config.devices[:1])
            device = config.devices[0]
        else:
            device = (_gpu_names() or ["/cpu:0"])[0]
        strategy = tf.distribute.OneDeviceStrategy(device)
    else:
        strategy = local_strategy()
    placement = Placement(strategy, strategy.num_replicas_in_sync, 1, True,
                          "chief")
    check_batch_size(config.batch_size, placement.num_replicas)
    return placement


def local_strategy():
    """``MirroredStrategy`` over this machine's GPUs, else the CPU alone
    (under a backend other than TensorFlow: Keras' default device)."""
    from tfcnn.train import backend

    if not backend.is_tensorflow():
        return KerasDistribution(None)
    gpus = _gpu_names()
    if gpus:
        return mirrored(gpus)
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def mirrored(devices=None):
    """``MirroredStrategy`` over ``devices`` with a fitting all-reduce.

    GPUs keep TensorFlow's default (NCCL). Replicas that are all CPU
    devices (logical CPUs, as in tests) reduce through one device: between
    CPUs of one process collective all-reduce gains nothing, and several
    such strategies in one process reuse collective instance keys and abort
    each other's reductions ("Shape mismatch in the collective instance").

    Args:
        devices: list of device names, or None for every visible GPU.

    Returns:
        a ``tf.distribute.MirroredStrategy``.
    """
    if devices and all("cpu" in d.lower() for d in devices):
        return tf.distribute.MirroredStrategy(
            devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    return tf.distribute.MirroredStrategy(devices)


def check_batch_size(batch_size, num_replicas):
    """Raises ``RecipeError`` unless the global batch splits evenly."""
    if batch_size % num_replicas:
        raise RecipeError(
            f"train.batch_size must be a multiple of the {num_replicas} "
            f"replicas (the batch is global and split evenly). "
            f"Received: batch_size={batch_size}")


def worker_dir(model_dir, placement):
    """Where this process writes: ``model_dir`` for the chief.

    Other workers get a fresh temporary folder, so that the files every
    worker must write in step (backups, checkpoints) never collide with the
    chief's. ``remove_worker_dir`` deletes it.
    """
    if placement.is_chief:
        return str(model_dir)
    return tempfile.mkdtemp(prefix=f"tfcnn-{placement.task}-")


def remove_worker_dir(path, placement):
    """Deletes a non-chief worker's temporary folder."""
    if not placement.is_chief:
        shutil.rmtree(path, ignore_errors=True)


class KerasDistribution:
    """The strategy of a backend without tf.distribute (JAX).

    Keras' ``keras.distribution`` API takes the place of a
    ``tf.distribute`` strategy: ``scope()`` makes ``distribution`` (a
    ``keras.distribution.DataParallel``, or None for one device) current
    while the model is built, and ``tfcnn.train.fit`` keeps it set for the
    whole run (Keras' ``fit`` splits each batch by the distribution
    current when it runs).

    Args:
        distribution: ``keras.distribution.Distribution`` or None.
    """

    def __init__(self, distribution):
        self.distribution = distribution
        self.num_replicas_in_sync = (
            1 if distribution is None
            else len(distribution.device_mesh.devices.flatten()))

    def scope(self):
        """The distribution's scope (nothing to enter for one device)."""
        if self.distribution is None:
            return contextlib.nullcontext()
        return self.distribution.scope()


def _keras_distribution(config):
    """The ``Placement`` of a backend without tf.distribute (JAX)."""
    import keras

    from tfcnn.train import backend

    backend.check_supported(config)
    known = keras.distribution.list_devices()
    if config.devices:
        devices = [_keras_device(d, known) for d in config.devices]
    else:
        devices = known
    if config.strategy is Strategy.ONE_DEVICE:
        devices = devices[:1]
    distribution = None
    if len(devices) > 1:
        distribution = keras.distribution.DataParallel(devices=devices)
    placement = Placement(KerasDistribution(distribution), len(devices), 1,
                          True, "chief")
    check_batch_size(config.batch_size, placement.num_replicas)
    return placement


def _keras_device(device, known):
    """A ``train.devices`` entry as Keras names it (``"gpu:1"``)."""
    name = _short_name(device)
    if name not in known:
        raise RecipeError(
            f"train.devices names a device this machine does not have "
            f"(known: {', '.join(known)}). Received: {device!r}")
    return name


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's part in a run, known before any TensorFlow op runs.

    Attributes:
        cluster: dict, the cluster as in ``TF_CONFIG`` (empty unless
            multi-worker).
        is_chief: bool, whether this process writes the run's files.
        task: str, ``"chief"`` or ``"<task_type>_<task_id>"``.
        chief: str, the chief's address (``"localhost"`` unless
            multi-worker).
    """

    cluster: dict
    is_chief: bool
    task: str
    chief: str


def worker_role(config):
    """Which worker this process is under a ``TrainConfig``.

    Under ``multi_worker`` the role comes from the cluster ``train.cluster``
    names (``tfcnn.train.cluster.resolve``, which exports it as
    ``TF_CONFIG``): the task of type ``chief``, or else worker 0, is the
    chief (as in ``tf.distribute.MultiWorkerMirroredStrategy``). Every
    other strategy runs one process, the chief. No TensorFlow op runs, so
    callers may ask before ``make_strategy``.

    Args:
        config: ``tfcnn.recipe.TrainConfig``.

    Returns:
        a ``WorkerRole``.

    Raises:
        RecipeError: ``multi_worker`` without a cluster, or a malformed one.
    """
    if config.strategy is not Strategy.MULTI_WORKER:
        return WorkerRole({}, True, "chief", "localhost")
    resolved = cluster_lib.resolve(config)
    cluster = resolved["cluster"]
    task_type = resolved["task"]["type"]
    task_id = resolved["task"]["index"]
    chief = (cluster.get("chief") or cluster["worker"])[0]
    is_chief = task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in cluster)
    return WorkerRole(cluster, is_chief,
                      "chief" if is_chief else f"{task_type}_{task_id}",
                      chief)


def _multi_worker(config):
    role = worker_role(config)
    cluster = role.cluster
    _configure_coordination(cluster, config)
    watchdog = _JoinWatchdog(config.join_timeout, cluster)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    # A first all-reduce returns once every worker is up (in a tf.function:
    # run eagerly, the strategy logs a warning about its overhead).
    def one():
        return tf.constant(1.0)

    @tf.function(autograph=False)
    def first_all_reduce():
        return strategy.run(one)

    strategy.reduce("SUM", first_all_reduce(), axis=None)
    watchdog.cancel()
    _fix_keras_multi_worker_mean()
    num_workers = sum(len(cluster.get(kind, ()))
                      for kind in ("chief", "worker"))
    placement = Placement(strategy, strategy.num_replicas_in_sync,
                          num_workers, role.is_chief, role.task)
    check_batch_size(config.batch_size, placement.num_replicas)
    return placement


class _JoinWatchdog:
    """Ends the process when the cluster has not formed in time.

    TensorFlow waits for missing workers inside a C++ call that holds the
    GIL, so no Python timer or signal handler runs meanwhile; the
    ``faulthandler`` watchdog is a C thread that does. After a line saying
    how long the worker waits, it prints "Timeout" with the stack and exits
    with status 1 if the wait was not cancelled.
    """

    def __init__(self, seconds, cluster):
        workers = [address for kind in ("chief", "worker")
                   for address in cluster.get(kind, ())]
        console.progress(
            f"train: waiting up to train.join_timeout = {seconds} s for "
            f"the workers {', '.join(workers)} to join (start the same "
            "command with each one's TF_CONFIG)")
        faulthandler.dump_traceback_later(seconds, exit=True)

    def cancel(self):
        faulthandler.cancel_dump_traceback_later()


def _configure_coordination(cluster, config):
    """Bounds how long workers wait for each other.

    ``MultiWorkerMirroredStrategy`` starts TensorFlow's coordination service
    with its defaults when none is configured: a worker that never starts
    (or dies before joining) keeps the others waiting for the cluster for
    an hour. Configured here first, the same service waits
    ``train.join_timeout`` seconds for every worker to join and, through
    its heartbeats, fails the survivors' collectives with
    ``UnavailableError`` ("tasks are unhealthy") once a worker has been
    silent for ``train.worker_timeout`` seconds. A slow step is no
    heartbeat lost, so no per-collective timeout is needed. The call is
    the one the strategy itself makes (``context.configure_coordination_
    service``), with the timeouts added. The join itself is bounded by
    ``_JoinWatchdog``: the registration timeout alone did not end the
    wait for a worker that never started.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return
    spec = tf.train.ClusterSpec(cluster)
    jobs = [coordination_config_pb2.CoordinatedJob(
                name=job, num_tasks=spec.num_tasks(job))
            for job in ("chief", "worker") if job in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=config.join_timeout * 1000,
        heartbeat_timeout_in_ms=config.worker_timeout * 1000)


def _fix_keras_multi_worker_mean():
    """Makes Keras average scalar step outputs over all workers correctly.

    Keras 3.15's ``reduce_per_replica`` reduces the step's logs (loss and
    metric scalars) under ``MultiWorkerMirroredStrategy`` with
    ``strategy.reduce("MEAN", v, axis=0)``, which fails on a scalar
    ("Invalid reduction dimension 0 for input with 0 dimensions"), so
    ``fit`` could not run at all. Scalars are averaged with ``axis=None``
    (the mean over replicas) instead; everything else keeps Keras' code.
    Idempotent.

    Works around keras-team/keras#20585 (Keras 3's ``fit`` under
    ``MultiWorkerMirroredStrategy``, open) and tensorflow/tensorflow#72388
    (its error: "Invalid reduction dimension 0 for input with 0
    dimensions"); ``tests/train/test_keras_patches.py`` fails once Keras no
    longer needs it.
    """
    from keras.src.backend.tensorflow import trainer

    keras_reduce = trainer.reduce_per_replica
    if getattr(keras_reduce, "_tfcnn_fixed", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not isinstance(
                strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return keras_reduce(values, strategy, reduction)

        def reduce(value):
            parts = getattr(value, "values", (value,))
            if all(getattr(p, "shape", None) is not None
                   and p.shape.rank == 0 for p in parts):
                return strategy.reduce("MEAN", value, axis=None)
            return keras_reduce(value, strategy, reduction)

        return tf.nest.map_structure(reduce, values)

    reduce_per_replica._tfcnn_fixed = True
    trainer.reduce_per_replica = reduce_per_replica


def _gpu_names():
    return [f"/gpu:{i}"
            for i in range(len(tf.config.list_logical_devices("GPU")))]


def _check_devices(devices):
    if not devices:
        return
    known = {_short_name(d.name) for d in tf.config.list_logical_devices()}
    for device in devices:
        if _short_name(device) not in known:
            raise RecipeError(
                f"train.devices names a device this machine does not have "
                f"(known: {', '.join(sorted(known))}). Received: {device!r}")


def _short_name(device):
    # "/gpu:1", "GPU:1", "/device:GPU:1" and
    # "/job:localhost/replica:0/task:0/device:GPU:1" all mean "gpu:1".
    name = device.lower().rsplit("/", 1)[-1]
    return name.removeprefix("device:")
