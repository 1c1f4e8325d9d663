"""``IGNORE_VALUE`` has one home, ``tfcnn.label_values``."""

import ast
from pathlib import Path

import tfcnn
from tfcnn import label_values

ROOT = Path(tfcnn.__file__).parent


def test_ignore_value_is_vocs_void():
    assert label_values.IGNORE_VALUE == 255


def test_no_other_module_defines_the_ignore_value():
    defined = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(
                    getattr(target, "id", None) == "IGNORE_VALUE"
                    for target in node.targets):
                defined.append(path.relative_to(ROOT).as_posix())
    assert defined == ["label_values.py"]
