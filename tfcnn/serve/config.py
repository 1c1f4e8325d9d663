"""TF Serving's configuration files: models with version policies, batching.

``read_model_config_file`` reads ``--model-config-file`` in TF Serving's
text format (``ModelServerConfig`` of ``model_server_config.proto``)::

    model_config_list {
      config {
        name: "digits"
        base_path: "/srv/saved_models/digits"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 2 } }
        version_labels { key: "stable" value: 3 }
      }
    }

``model_version_policy`` is ``latest { num_versions }`` (the default, with
one version), ``all {}`` or ``specific { versions: ... }``, as in
``file_system_storage_path_source.proto``. ``update_model_config_file``
adds or updates one model's entry (``tfcnn export --model-config-file``).

``read_monitoring_config_file`` reads ``--monitoring_config_file``, TF
Serving's ``MonitoringConfig`` (``prometheus_config { enable: true path:
"/monitoring/prometheus/metrics" }``; ``monitoring_config.proto``, declared
here the same way).

``read_batching_parameters_file`` reads ``--batching-parameters-file``,
TF Serving's ``BatchingParameters`` text format (``max_batch_size { value:
32 }``; ``session_bundle_config.proto``, which the tensorflow-serving-api
package does not ship, so the message is declared here with the same field
names, numbers and wrapper types).
"""

import dataclasses
import enum
import os
import pathlib

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format
from google.protobuf import wrappers_pb2

from tfcnn import atomic_files
from tfcnn.errors import ConfigError
from tfcnn.export import arguments
from tfcnn.export import layout


class PolicyKind(enum.Enum):
    """TF Serving's ``ServableVersionPolicy`` choices."""

    LATEST = "latest"
    ALL = "all"
    SPECIFIC = "specific"


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which versions of a model are served.

    Attributes:
        kind: ``PolicyKind``. Defaults to ``PolicyKind.LATEST``.
        num_versions: int, with LATEST: how many of the newest versions.
            Defaults to 1 (TF Serving's default policy).
        versions: tuple of int, with SPECIFIC: the versions.
    """

    kind: PolicyKind = PolicyKind.LATEST
    num_versions: int = 1
    versions: tuple = ()

    def __post_init__(self):
        arguments.check_positive_int(self.num_versions, "num_versions")
        for version in self.versions:
            layout.check_version(version)

    def wanted(self, available):
        """The versions to serve, newest first, among ``available``.

        ``available`` holds the versions that are loaded or can be loaded,
        so a version that fails to load leaves the policy's choice to the
        next one and the previous version keeps serving.
        """
        newest_first = sorted(available, reverse=True)
        if self.kind is PolicyKind.LATEST:
            return newest_first[:self.num_versions]
        if self.kind is PolicyKind.SPECIFIC:
            return [v for v in newest_first if v in self.versions]
        return newest_first


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One served model.

    Attributes:
        name: str, the name clients ask for.
        base_path: ``pathlib.Path``, the folder of its version folders.
        policy: ``VersionPolicy``.
        labels: tuple of ``(label, version)`` pairs.
    """

    name: str
    base_path: pathlib.Path
    policy: VersionPolicy = VersionPolicy()
    labels: tuple = ()


def _server_config_pb2():
    from tensorflow_serving.config import model_server_config_pb2

    return model_server_config_pb2


def read_model_config_file(path):
    """Returns the ``ModelConfig`` list of a TF Serving model config file.

    A relative ``base_path`` is taken relative to the file's folder.

    Raises:
        ConfigError: the file does not parse, or an entry is invalid
            (named with the file).
    """
    proto = _parse(path, _server_config_pb2().ModelServerConfig())
    if proto.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{path}: expected a model_config_list")
    configs = []
    for entry in proto.model_config_list.config:
        configs.append(_model_config(path, entry))
    names = [config.name for config in configs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: model names must be unique. "
                          f"Received: {duplicates} more than once")
    return configs


def _parse(path, message):
    try:
        with open(path, encoding="utf-8") as f:
            text_format.Parse(f.read(), message)
    except (text_format.ParseError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    return message


def _model_config(path, entry):
    try:
        layout.check_model_name(entry.name)
        if entry.model_platform not in ("", "tensorflow"):
            raise ConfigError(
                "model_platform must be 'tensorflow'. "
                f"Received: model_platform={entry.model_platform!r}")
        if not entry.base_path:
            raise ConfigError("base_path is empty")
        base_path = pathlib.Path(path).parent / entry.base_path
        policy = entry.model_version_policy
        choice = policy.WhichOneof("policy_choice")
        if choice == "all":
            version_policy = VersionPolicy(PolicyKind.ALL)
        elif choice == "specific":
            if not policy.specific.versions:
                raise ConfigError("specific {} lists no versions")
            version_policy = VersionPolicy(
                PolicyKind.SPECIFIC,
                versions=tuple(policy.specific.versions))
        elif choice == "latest":
            version_policy = VersionPolicy(
                num_versions=policy.latest.num_versions or 1)
        else:
            version_policy = VersionPolicy()
        labels = []
        for label, version in sorted(entry.version_labels.items()):
            if not layout.is_model_name(label):
                raise ConfigError(f"version label {label!r} must be "
                                  "letters, digits, '_', '.' or '-'")
            labels.append((label, layout.check_version(version)))
    except ValueError as error:
        raise ConfigError(
            f"{path}: model {entry.name!r}: {error}") from None
    return ModelConfig(entry.name, base_path, version_policy, tuple(labels))


def update_model_config_file(path, name, base_path, label=None,
                             version=None):
    """Adds or updates ``name``'s entry of a model config file, atomically.

    A new entry gets TF Serving's default policy; an existing one keeps
    its policy and labels. With ``label``, ``version_labels[label]`` is
    set to ``version``.

    Args:
        path: str or path; created when missing.
        name: str, the model name.
        base_path: str or path, written as an absolute path.
        label: str or None, a version label to point at ``version``.
        version: int, the version the label names.

    Raises:
        ConfigError: the existing file does not parse.
    """
    pb2 = _server_config_pb2()
    config = pb2.ModelServerConfig()
    if os.path.exists(path):
        _parse(path, config)
        read_model_config_file(path)  # the whole file must be valid
    entries = config.model_config_list.config
    entry = next((e for e in entries if e.name == name), None)
    if entry is None:
        entry = entries.add(name=name, model_platform="tensorflow")
    entry.base_path = str(pathlib.Path(base_path).absolute())
    if label is not None:
        if not layout.is_model_name(label):
            raise arguments.ArgumentError(
                "label must be letters, digits, '_', '.' or '-'. "
                f"Received: label={label!r}")
        entry.version_labels[label] = layout.check_version(version)
    atomic_files.write_text_atomic(path, text_format.MessageToString(config))


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's batching parameters (``BatchingParameters``).

    Attributes:
        max_batch_size: int, rows in one merged call. Defaults to 32.
        batch_timeout_micros: int, how long the first request of a batch
            waits for others. Defaults to 1000.
        max_enqueued_batches: int, a queue holds at most this many batches
            of requests; beyond it requests get RESOURCE_EXHAUSTED.
            Defaults to 64.
        num_batch_threads: int, merged calls that run at once. Defaults to
            the number of CPU cores.
        allowed_batch_sizes: tuple of int, increasing, the last one
            ``max_batch_size``: a merged batch is padded (its last row
            repeated) up to the next of these sizes, so the model sees few
            distinct shapes (oneDNN and XLA build kernels per shape).
            Defaults to () (no padding).
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    max_enqueued_batches: int = 64
    num_batch_threads: int = dataclasses.field(
        default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: tuple = ()

    def __post_init__(self):
        for field in ("max_batch_size", "max_enqueued_batches",
                      "num_batch_threads"):
            arguments.check_positive_int(getattr(self, field), field)
        sizes = tuple(self.allowed_batch_sizes)
        object.__setattr__(self, "allowed_batch_sizes", sizes)
        if sizes and (any(not isinstance(n, int) or n < 1 for n in sizes)
                      or list(sizes) != sorted(set(sizes))
                      or sizes[-1] != self.max_batch_size):
            raise arguments.ArgumentError(
                "allowed_batch_sizes must increase and end with "
                f"max_batch_size={self.max_batch_size}. "
                f"Received: allowed_batch_sizes={list(sizes)}")
        if (isinstance(self.batch_timeout_micros, bool)
                or not isinstance(self.batch_timeout_micros, int)
                or self.batch_timeout_micros < 0):
            raise arguments.ArgumentError(
                "batch_timeout_micros must be an int >= 0. Received: "
                f"batch_timeout_micros={self.batch_timeout_micros!r}")


_BATCHING_FIELDS = ("max_batch_size", "batch_timeout_micros",
                    "max_enqueued_batches", "num_batch_threads")


def _batching_message():
    """``tensorflow.serving.BatchingParameters`` declared at run time."""
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="tfcnn_batching_parameters.proto",
        package="tensorflow.serving",
        dependency=[wrappers.name], syntax="proto3")
    message = file_proto.message_type.add(name="BatchingParameters")
    field_type = descriptor_pb2.FieldDescriptorProto
    for number, name in enumerate(_BATCHING_FIELDS, start=1):
        message.field.add(name=name, number=number,
                          type=field_type.TYPE_MESSAGE,
                          type_name=".google.protobuf.Int64Value")
    message.field.add(name="thread_pool_name", number=5,
                      type=field_type.TYPE_MESSAGE,
                      type_name=".google.protobuf.StringValue")
    message.field.add(name="allowed_batch_sizes", number=6,
                      type=field_type.TYPE_INT64,
                      label=field_type.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7,
                      type=field_type.TYPE_BOOL)
    pool.Add(file_proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def read_batching_parameters_file(path, **overrides):
    """Returns the ``BatchingParameters`` of a TF Serving text file.

    Args:
        path: str or path.
        **overrides: values that replace the file's (command-line flags);
            None values are ignored.

    Raises:
        ConfigError: the file does not parse, uses a field this server
            does not implement, or holds an out-of-range value.
    """
    proto = _parse(path, _batching_message()())
    unsupported = {"thread_pool_name": proto.HasField("thread_pool_name"),
                   "pad_variable_length_inputs":
                       proto.pad_variable_length_inputs}
    for name, present in unsupported.items():
        if present:
            raise ConfigError(f"{path}: {name} is not supported by tfcnn "
                              "serve (requests of the same shape are "
                              "merged as they come)")
    values = {name: getattr(proto, name).value for name in _BATCHING_FIELDS
              if proto.HasField(name)}
    if proto.allowed_batch_sizes:
        values["allowed_batch_sizes"] = tuple(proto.allowed_batch_sizes)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return BatchingParameters(**values)
    except ValueError as error:
        raise ConfigError(f"{path}: {error}") from None



DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"


def _monitoring_message():
    """``tensorflow.serving.MonitoringConfig`` declared at run time."""
    pool = descriptor_pool.DescriptorPool()
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="tfcnn_monitoring_config.proto", package="tensorflow.serving",
        syntax="proto3")
    field_type = descriptor_pb2.FieldDescriptorProto
    prometheus = file_proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=field_type.TYPE_BOOL)
    prometheus.field.add(name="path", number=2, type=field_type.TYPE_STRING)
    monitoring = file_proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1,
                         type=field_type.TYPE_MESSAGE,
                         type_name=".tensorflow.serving.PrometheusConfig")
    pool.Add(file_proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def read_monitoring_config_file(path):
    """The Prometheus metrics path a ``MonitoringConfig`` file asks for.

    Returns:
        str, the URL path of the metrics page (TF Serving's default
        ``/monitoring/prometheus/metrics`` when the file names none), or
        None when ``prometheus_config`` is not enabled.

    Raises:
        ConfigError: the file does not parse, or the path does not start
            with '/'.
    """
    proto = _parse(path, _monitoring_message()())
    if not proto.prometheus_config.enable:
        return None
    metrics_path = proto.prometheus_config.path or DEFAULT_METRICS_PATH
    if not metrics_path.startswith("/") or metrics_path.startswith(
            "/v1/models"):
        raise ConfigError(
            f"{path}: prometheus_config.path must start with '/' and not "
            f"with /v1/models. Received: path={metrics_path!r}")
    return metrics_path
