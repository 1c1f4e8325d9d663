"""Fixtures of the serve tests: small exported models."""

import pytest

from tests.export import contract_model


def publish(base, name="tiny", favour=0, version=0):
    """Exports a contract model whose top class is ``favour``."""
    from tfcnn.export import publish as publish_lib

    return publish_lib.export_model(
        contract_model.build(favour=favour), export_dir=base, name=name,
        version=version, top_k=2, class_names=contract_model.CLASS_NAMES,
        verify=False)


@pytest.fixture(scope="module")
def model_base(tmp_path_factory):
    """A base directory with 'tiny' version 1 (top class 'ant')."""
    base = tmp_path_factory.mktemp("models")
    publish(base, "tiny", favour=0)
    return base
