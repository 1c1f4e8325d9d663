"""tfcnn's modules import each other in one direction: no import cycle.

Imports inside functions count too: they defer the cost, not the
dependency, so any cycle through them fails as well.
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tfcnn

ROOT = Path(tfcnn.__file__).parent


def _module_graph(top_level_only=False):
    """Module name -> the tfcnn modules it imports."""
    files = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else ast.walk(tree)
        imported = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}"
                                           for alias in node.names]
            else:
                continue
            imported.update(t for t in targets if t in files and t != name
                            and not name.startswith(t + "."))
        graph[name] = imported
    return graph


def _cycles(graph):
    """The strongly connected components of more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(name):
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for target in graph[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == name:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def test_no_module_level_import_cycle():
    graph = _module_graph(top_level_only=True)
    assert len(graph) > 50
    assert _cycles(graph) == []


def test_no_cycle_through_deferred_imports():
    assert [sorted(c) for c in _cycles(_module_graph())] == []


def _package_graph(graph):
    """The module graph with each module merged into its package below
    ``tfcnn`` (``tfcnn.train.fit`` -> ``tfcnn.train``); a module at the top
    (``tfcnn.recipe``) stays itself."""
    def package(name):
        return ".".join(name.split(".")[:2])

    packages = {}
    for name, targets in graph.items():
        packages.setdefault(package(name), set()).update(
            package(target) for target in targets
            if package(target) not in (package(name), "tfcnn"))
    return packages


def test_no_package_level_cycle_through_any_import():
    # Two packages that import each other, even through different modules
    # and only inside functions, are one package in two folders.
    graph = _package_graph(_module_graph())
    assert {"tfcnn.train", "tfcnn.tasks", "tfcnn.models"} <= set(graph)
    assert [sorted(c) for c in _cycles(graph)] == []


def test_the_package_graph_merges_modules():
    graph = _package_graph({"tfcnn.a.x": {"tfcnn.b.y"}, "tfcnn.a.z": set(),
                            "tfcnn.b.y": {"tfcnn.a.z", "tfcnn.b.w"},
                            "tfcnn.b.w": set(), "tfcnn": {"tfcnn.a.x"}})
    assert graph == {"tfcnn.a": {"tfcnn.b"}, "tfcnn.b": {"tfcnn.a"},
                     "tfcnn": {"tfcnn.a"}}
    assert _cycles(graph) == [frozenset({"tfcnn.a", "tfcnn.b"})]


def test_augment_depends_on_neither_data_nor_recipe():
    # The augmentation layers take their settings as arguments: the data
    # pipeline and the recipe sit on either side of them, never below.
    graph = _module_graph()
    reached, todo = set(), [name for name in graph
                            if name.split(".")[:2] == ["tfcnn", "augment"]]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    assert "tfcnn.augment.build" in reached
    assert sorted(name for name in reached
                  if name.split(".")[:2] in (["tfcnn", "data"],
                                             ["tfcnn", "recipe"])) == []


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [
        frozenset("abc")]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# The README's loading recipe, in a fresh interpreter.
_LOAD = textwrap.dedent("""
    import sys
    import tfcnn
    assert "keras" not in sys.modules and "tensorflow" not in sys.modules
    import keras
    model = keras.models.load_model(sys.argv[1])
    print(sorted({type(layer).__module__.split(".")[1]
                  for layer in model._flatten_layers()
                  if type(layer).__module__.startswith("tfcnn.")}))
""")


@pytest.mark.slow
def test_plain_import_tfcnn_loads_a_trained_runs_model_keras(tmp_path):
    """A trained model.keras holds tfcnn's preprocessing layers
    (RandomOrCentreCrop, ...) besides its custom layers; ``import tfcnn``
    registers them all without importing Keras itself."""
    from tests.train.conftest import tiny_recipe
    from tfcnn.train import fit

    recipe = tiny_recipe(tmp_path / "run", epochs=1)
    fit.train(recipe, verbose=0)
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, str(tmp_path / "run" / "model.keras")],
        capture_output=True, text=True,
        env={"PYTHONPATH": str(ROOT.parent), "TF_CPP_MIN_LOG_LEVEL": "3",
             "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'augment'" in done.stdout.strip().splitlines()[-1]
