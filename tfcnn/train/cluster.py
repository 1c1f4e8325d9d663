"""Which machines train together: the cluster of a multi-worker run.

``MultiWorkerMirroredStrategy`` learns its cluster from ``TF_CONFIG``
(JSON: every worker's address and this process's task). Cluster managers
describe the same thing in their own environment variables;
``resolve(config)`` reads whichever one ``train.cluster`` names and
returns it as ``TF_CONFIG``'s dict, so the rest of tfcnn (and TensorFlow)
knows one form:

- ``tf_config``: ``TF_CONFIG`` as given (set by hand, or by an operator
  such as Kubeflow's TFJob).
- ``slurm``: the job step ``srun`` started, read by TensorFlow's own
  ``tf.distribute.cluster_resolver.SlurmClusterResolver`` from
  ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS``, ``SLURM_STEP_NODELIST`` and
  ``SLURM_STEP_TASKS_PER_NODE``. Task 0 is the chief; the tasks on a node
  listen on ``train.cluster_port`` plus their rank on that node. Each task
  sees its own GPUs: where Slurm binds GPUs to tasks itself
  (``--gpus-per-task``, which sets ``SLURM_GPUS_PER_TASK``) its binding
  stands, otherwise the resolver splits the node's GPUs between the node's
  tasks through ``CUDA_VISIBLE_DEVICES``.
- ``kubernetes``: an Indexed Job (``completionMode: Indexed``) whose pods
  reach each other through a headless service. Kubernetes sets
  ``JOB_COMPLETION_INDEX`` in each pod; the Job's manifest sets
  ``TFCNN_WORKERS`` (the number of pods, its ``completions``) and
  ``TFCNN_WORKER_ADDRESS``, the stable address of pod ``{index}``, e.g.
  ``tfcnn-train-{index}.tfcnn-workers`` (the pod's host name, which an
  Indexed Job sets to ``<job name>-<index>``, dot the service named in the
  pod's ``subdomain``). An address without a port gets
  ``train.cluster_port``. ``deploy/kubernetes/train.yaml`` is such a Job.
- ``auto``: the first of these whose variables are present, in that order.

The resolved cluster is exported as ``TF_CONFIG``, so the strategy, Keras
and any process started from this one see the same cluster.
"""

import json
import os

from tfcnn.errors import RecipeError
from tfcnn.recipe import Cluster

SLURM_STEP_VARIABLES = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS",
                        "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE")
KUBERNETES_VARIABLES = ("JOB_COMPLETION_INDEX", "TFCNN_WORKERS",
                        "TFCNN_WORKER_ADDRESS")
# Set beside TF_CONFIG by ``export``: the manager TF_CONFIG was made from.
RESOLVED_FROM = "TFCNN_CLUSTER_RESOLVED_FROM"


def resolve(config):
    """The cluster and this process's task, as ``TF_CONFIG``'s dict.

    A cluster read from Slurm or Kubernetes is exported as ``TF_CONFIG``
    (with ``RESOLVED_FROM`` naming its source), so the strategy, Keras and
    any process started from this one see the same cluster, and a second
    call reads it back instead of resolving again: the Slurm resolver has
    by then narrowed ``CUDA_VISIBLE_DEVICES`` to this task's GPUs, which
    must not be split again.

    Args:
        config: ``tfcnn.recipe.TrainConfig`` (its ``cluster`` and
            ``cluster_port``).

    Returns:
        dict with ``cluster`` (job name -> list of ``host:port``) and
        ``task`` (``type`` and ``index``).

    Raises:
        RecipeError: the environment ``train.cluster`` names is missing or
            malformed; the message names the variable.
    """
    environ = os.environ
    source = config.cluster
    if source is Cluster.AUTO:
        source = detect(environ)
    if (source is Cluster.TF_CONFIG
            or environ.get(RESOLVED_FROM) == source.value):
        return _from_tf_config(environ)
    if source is Cluster.SLURM:
        resolved = _from_slurm(environ, config.cluster_port)
    else:
        resolved = _from_kubernetes(environ, config.cluster_port)
    environ["TF_CONFIG"] = json.dumps(resolved)
    environ[RESOLVED_FROM] = source.value
    return resolved


def detect(environ):
    """The cluster manager whose variables ``environ`` holds.

    Raises:
        RecipeError: none of them.
    """
    if environ.get("TF_CONFIG"):
        return Cluster.TF_CONFIG
    if all(name in environ for name in SLURM_STEP_VARIABLES):
        return Cluster.SLURM
    if "JOB_COMPLETION_INDEX" in environ:
        return Cluster.KUBERNETES
    raise RecipeError(
        "train.strategy = \"multi_worker\" needs a cluster: the TF_CONFIG "
        "environment variable (cluster and task), a Slurm job step (srun "
        "sets SLURM_PROCID, SLURM_STEP_NODELIST, ...) or a Kubernetes "
        "Indexed Job (JOB_COMPLETION_INDEX, TFCNN_WORKERS, "
        "TFCNN_WORKER_ADDRESS). Received: TF_CONFIG unset, no Slurm step, "
        "no Kubernetes job index")


def _from_tf_config(environ):
    raw = environ.get("TF_CONFIG", "")
    if not raw:
        raise RecipeError(
            "train.cluster = \"tf_config\" needs the TF_CONFIG environment "
            "variable (cluster and task). Received: TF_CONFIG unset")
    try:
        parsed = json.loads(raw)
        cluster = {job: list(addresses)
                   for job, addresses in parsed["cluster"].items()}
        task = {"type": parsed["task"]["type"],
                "index": int(parsed["task"]["index"])}
        if not (cluster.get("chief") or cluster["worker"]):
            raise IndexError("no chief and no worker")
    except (ValueError, KeyError, TypeError, IndexError,
            AttributeError) as error:
        raise RecipeError(
            f"TF_CONFIG must be JSON with cluster and task.type/index "
            f"({error}). Received: TF_CONFIG={raw!r}") from None
    return {"cluster": cluster, "task": task}


def _from_slurm(environ, port):
    missing = [name for name in SLURM_STEP_VARIABLES if name not in environ]
    if missing:
        raise RecipeError(
            f"train.cluster = \"slurm\" runs inside a job step started by "
            f"srun, which sets {', '.join(SLURM_STEP_VARIABLES)}. Received: "
            f"{', '.join(missing)} unset")
    resolver = _slurm_resolver(environ, port)
    spec = resolver.cluster_spec().as_dict()
    return {"cluster": {job: list(tasks) for job, tasks in spec.items()},
            "task": {"type": resolver.task_type,
                     "index": int(resolver.task_id)}}


def _slurm_resolver(environ, port):
    """TensorFlow's ``SlurmClusterResolver`` for the step in ``environ``.

    GPUs: Slurm's own per-task binding (``--gpus-per-task``) stands when it
    made one; otherwise the resolver splits the node's GPUs (those in
    ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi``'s) evenly between the
    node's tasks. On nodes without GPUs nothing is bound; the resolver
    still needs a positive GPU count to lay out a node's tasks, so it then
    gets one per task with its binding turned off. The hostlist and
    tasks-per-node parsers are the resolver module's own (not exported
    under ``tf.distribute``; TensorFlow is pinned in setup.cfg).
    """
    from tensorflow.python.distribute.cluster_resolver import (
        slurm_cluster_resolver as slurm,
    )

    received = ", ".join(f"{name}={environ[name]!r}"
                         for name in SLURM_STEP_VARIABLES)
    try:
        tasks = max(slurm.expand_tasks_per_node(
            environ["SLURM_STEP_TASKS_PER_NODE"]))
        slurm.expand_hostlist(environ["SLURM_STEP_NODELIST"])
        int(environ["SLURM_PROCID"])
        int(environ["SLURM_STEP_NUM_TASKS"])
    except ValueError as error:
        raise RecipeError(f"the Slurm step's variables do not parse "
                          f"({error}). Received: {received}") from None
    gpus = 0
    if "SLURM_GPUS_PER_TASK" not in environ:
        visible = environ.get("CUDA_VISIBLE_DEVICES")
        try:
            gpus = (len([d for d in visible.split(",") if d.strip()])
                    if visible is not None else slurm.get_num_gpus())
        except (OSError, RuntimeError):  # no nvidia-smi: no GPUs
            gpus = 0
    if 0 < gpus < tasks:
        raise RecipeError(
            f"a node of the Slurm step runs {tasks} tasks but has {gpus} "
            f"GPUs: start at most one task per GPU (srun --ntasks-per-node)"
            f". Received: {received}, {gpus} GPUs")
    layout = (dict(gpus_per_node=gpus) if gpus else
              dict(gpus_per_node=tasks, gpus_per_task=1, auto_set_gpu=False))
    try:
        return slurm.SlurmClusterResolver(port_base=port, **layout)
    except RuntimeError as error:
        raise RecipeError(f"Slurm's step cannot form a cluster ({error}). "
                          f"Received: {received}") from None


def _from_kubernetes(environ, port):
    missing = [name for name in KUBERNETES_VARIABLES if name not in environ]
    if missing:
        raise RecipeError(
            "train.cluster = \"kubernetes\" runs in a pod of an Indexed Job "
            "(Kubernetes sets JOB_COMPLETION_INDEX) whose manifest sets "
            "TFCNN_WORKERS (the number of pods) and TFCNN_WORKER_ADDRESS "
            "(pod {index}'s stable address). Received: "
            f"{', '.join(missing)} unset")
    values = {name: environ[name] for name in KUBERNETES_VARIABLES}
    try:
        index = int(values["JOB_COMPLETION_INDEX"])
        count = int(values["TFCNN_WORKERS"])
        if not 0 <= index < count:
            raise ValueError(f"index {index} outside [0, {count})")
        addresses = [values["TFCNN_WORKER_ADDRESS"].format(index=i)
                     for i in range(count)]
    except (ValueError, KeyError, IndexError) as error:
        raise RecipeError(
            f"the Kubernetes job's variables do not form a cluster "
            f"({error}). Received: " + ", ".join(
                f"{name}={value!r}" for name, value in values.items())
        ) from None
    addresses = [a if _has_port(a) else f"{a}:{port}" for a in addresses]
    if len(set(addresses)) != count:
        raise RecipeError(
            "TFCNN_WORKER_ADDRESS must give each pod its own address (put "
            "{index} in it). Received: TFCNN_WORKER_ADDRESS="
            f"{values['TFCNN_WORKER_ADDRESS']!r}")
    return {"cluster": {"worker": addresses},
            "task": {"type": "worker", "index": index}}


def _has_port(address):
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and not host.endswith(":")
