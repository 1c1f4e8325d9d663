"""Generic code asks the task (``tfcnn.tasks``) and never its name."""

import re
from pathlib import Path

import keras
import pytest

import tfcnn
from tfcnn import tasks
from tfcnn.errors import DataError

ROOT = Path(tfcnn.__file__).parent
# A comparison with a task's name: == / != / is / in "segmentation".
_NAME_TEST = re.compile(
    r"""(==|!=| is | in) *\(?['"](segmentation|classification)['"]""")


def _name_tests(root):
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "tasks":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _NAME_TEST.search(line):
                found.append(f"{path.relative_to(root)}:{number}")
    return found


def test_generic_code_never_compares_task_names():
    assert _name_tests(ROOT) == []


def test_the_name_test_finds_a_comparison(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "own.py").write_text('ok = name == "segmentation"')
    (tmp_path / "generic.py").write_text(
        'a = 1\nif task.name != "classification":\n    pass\n'
        'b = task in ("segmentation", "x")\n')
    assert _name_tests(tmp_path) == ["generic.py:2", "generic.py:4"]


@pytest.mark.parametrize("shape, name", [((3,), "classification"),
                                         ((8, 8, 3), "segmentation")])
def test_task_of_model_by_output_rank(shape, name):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(3, 1)(inputs)
    if len(shape) == 1:
        x = keras.layers.GlobalAveragePooling2D()(x)
    assert tasks.task_of_model(keras.Model(inputs, x)).name == name


def test_task_of_model_refuses_a_model_of_no_task():
    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(DataError, match=r"output_shape=\(None, 4, 2\)"):
        tasks.task_of_model(model)


def test_the_network_of_a_classification_training_model():
    inputs = keras.Input((8, 8, 3))
    network = keras.Sequential([keras.layers.Flatten(),
                                keras.layers.Dense(2)], name="net")
    outputs = keras.layers.Softmax()(network(
        keras.layers.Rescaling(0.5)(inputs)))
    model = keras.Model(inputs, outputs)
    assert tasks.get_task("classification").network(model) is network


@pytest.mark.parametrize("mask_key, name", [("", "classification"),
                                             ("segmentation_mask",
                                              "segmentation")])
def test_task_of_tfds_by_the_mask_key(mask_key, name):
    from tfcnn import recipe as recipe_lib

    data = recipe_lib.DataConfig(source="tfds", tfds_name="x",
                                 tfds_mask_key=mask_key)
    assert tasks.task_of_tfds(data).name == name


def test_the_default_task_is_the_manifests_default(tmp_path):
    # Labels that record no task are one class per image everywhere.
    from tfcnn.data import manifest as manifest_lib

    manifest = manifest_lib.Manifest(tmp_path, {"class_names": ["a"]},
                                     from_file=False)
    assert tasks.default_task().name == manifest.task


@pytest.mark.parametrize("name", tasks.list_tasks())
def test_each_task_names_its_serving_model(name):
    # tfcnn.export wraps a model in the class its task names, so a new
    # task brings its own serving signatures without touching export.
    from tfcnn.export import publish

    task = tasks.get_task(name)
    cls = publish._serving_class(task)
    assert f"{cls.__module__}:{cls.__name__}" == task.serving_model
    # What publish calls: cls(model, class_names, top_k).archive().
    assert callable(cls.archive)


def test_task_of_source_asks_each_task(tmp_path):
    from tests.data import segmentation_files

    segmentation_files.make_voc(tmp_path / "voc", train=1, val=1)
    (tmp_path / "classes" / "cat").mkdir(parents=True)
    assert tasks.task_of_source(tmp_path / "voc").name == "segmentation"
    # No task claims class folders: the default task's.
    assert tasks.task_of_source(tmp_path / "classes") is tasks.default_task()


@pytest.mark.parametrize("module", [
    "data/classification_ingest.py", "data/stats.py", "export/publish.py",
    "stages.py"])
def test_generic_modules_import_no_task_specific_module(module):
    # They ask the task (Task.reads_source, Task.read_tfds,
    # Task.serving_model) instead of importing one task's modules.
    import ast

    imported = set()
    for node in ast.walk(ast.parse((ROOT / module).read_text())):
        if isinstance(node, ast.ImportFrom):
            imported.update(f"{node.module}.{alias.name}"
                            for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert sorted(name for name in imported if "segmentation" in name) == []
