"""Tests of TF Serving's model config and batching parameters files."""

import pytest

from tfcnn.errors import ConfigError
from tfcnn.serve import config

CONFIG = """
model_config_list {
  config {
    name: "a"  base_path: "models/a"  model_platform: "tensorflow"
    model_version_policy { latest { num_versions: 2 } }
    version_labels { key: "stable" value: 3 }
  }
  config { name: "b" base_path: "/srv/b" model_version_policy { all {} } }
  config {
    name: "c" base_path: "/srv/c"
    model_version_policy { specific { versions: 1 versions: 4 } }
  }
  config { name: "d" base_path: "/srv/d" }
}
"""


def test_model_config_file_in_tf_servings_text_format(tmp_path):
    path = tmp_path / "models.config"
    path.write_text(CONFIG)
    a, b, c, d = config.read_model_config_file(path)
    assert a.base_path == tmp_path / "models" / "a"
    assert a.policy == config.VersionPolicy(num_versions=2)
    assert a.labels == (("stable", 3),)
    assert b.policy.kind is config.PolicyKind.ALL
    assert c.policy.versions == (1, 4)
    assert d.policy == config.VersionPolicy()  # TF Serving's default


@pytest.mark.parametrize("policy,wanted", [
    (config.VersionPolicy(), [5]),
    (config.VersionPolicy(num_versions=2), [5, 3]),
    (config.VersionPolicy(config.PolicyKind.ALL), [5, 3, 1]),
    (config.VersionPolicy(config.PolicyKind.SPECIFIC, versions=(1, 4)), [1]),
])
def test_version_policies_choose(policy, wanted):
    assert policy.wanted([1, 3, 5]) == wanted


@pytest.mark.parametrize("text,match", [
    ("model_config_list { config { name: 'a' } ", "models.config:"),
    ("model_config_list { config { name: '../a' base_path: '/x' } }",
     "Received: name="),
    ("model_config_list { config { name: 'a' } }", "base_path is empty"),
    ("model_config_list { config { name: 'a' base_path: '/x' "
     "model_platform: 'onnx' } }", "model_platform"),
    ("model_config_list { config { name: 'a' base_path: '/x' } "
     "config { name: 'a' base_path: '/y' } }", "unique"),
    ("model_config_list { config { name: 'a' base_path: '/x' "
     "model_version_policy { specific { } } } }", "no versions"),
    ("model_config_list { config { name: 'a' base_path: '/x' "
     "version_labels { key: 'x' value: 0 } } }", "Received: version=0"),
])
def test_bad_model_config_files_name_the_problem(tmp_path, text, match):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=match):
        config.read_model_config_file(path)


def test_update_keeps_other_models_and_policies(tmp_path):
    path = tmp_path / "models.config"
    path.write_text(CONFIG)
    config.update_model_config_file(path, "a", tmp_path / "elsewhere",
                                    label="canary", version=7)
    config.update_model_config_file(path, "new", tmp_path / "new")
    models = {m.name: m for m in config.read_model_config_file(path)}
    assert sorted(models) == ["a", "b", "c", "d", "new"]
    assert models["a"].policy.num_versions == 2
    assert dict(models["a"].labels) == {"stable": 3, "canary": 7}
    assert models["a"].base_path == tmp_path / "elsewhere"
    assert models["new"].policy == config.VersionPolicy()


def test_batching_parameters_file(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 16 }\n"
                    "batch_timeout_micros { value: 5000 }\n"
                    "num_batch_threads { value: 2 }\n")
    params = config.read_batching_parameters_file(path)
    assert params == config.BatchingParameters(
        max_batch_size=16, batch_timeout_micros=5000, num_batch_threads=2)
    flags = config.read_batching_parameters_file(path, max_batch_size=8,
                                                 num_batch_threads=None)
    assert flags.max_batch_size == 8 and flags.num_batch_threads == 2
    path.write_text("max_batch_size { value: 8 }\n"
                    "allowed_batch_sizes: 2 allowed_batch_sizes: 8\n")
    assert config.read_batching_parameters_file(
        path).allowed_batch_sizes == (2, 8)


@pytest.mark.parametrize("text,match", [
    ("max_batch_size: 3", "max_batch_size"),
    ("max_batch_size { value: 0 }", "Received: max_batch_size=0"),
    ("allowed_batch_sizes: 8", "end with max_batch_size=32"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4 "
     "allowed_batch_sizes: 2 allowed_batch_sizes: 8", "must increase"),
    ("pad_variable_length_inputs: true", "not supported"),
    ("batch_timeout_micros { value: -1 }", "batch_timeout_micros"),
])
def test_bad_batching_parameters(tmp_path, text, match):
    path = tmp_path / "batching.config"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=match):
        config.read_batching_parameters_file(path)


def test_monitoring_config_file(tmp_path):
    path = tmp_path / "monitoring.config"
    path.write_text("prometheus_config { enable: true }")
    assert config.read_monitoring_config_file(path) == \
        "/monitoring/prometheus/metrics"
    path.write_text('prometheus_config { enable: true, path: "/metrics" }')
    assert config.read_monitoring_config_file(path) == "/metrics"
    path.write_text("prometheus_config { enable: false }")
    assert config.read_monitoring_config_file(path) is None
    path.write_text('prometheus_config { enable: true, path: "metrics" }')
    with pytest.raises(ConfigError, match="must start with '/'"):
        config.read_monitoring_config_file(path)
    path.write_text("prometheus_config { nope: 1 }")
    with pytest.raises(ConfigError, match="monitoring.config"):
        config.read_monitoring_config_file(path)
