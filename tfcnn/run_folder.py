"""A run folder (``train.model_dir``): its layout, its recipe, its lock.

``RunFolder`` is the one place that names what a run folder holds, as
``tfcnn.export.layout`` is for exports: ``tfcnn train`` writes
``classes.json``, the resolved ``recipe.toml`` and ``fingerprint.json``
before it trains, then ``checkpoints/``, ``backup/``, ``logs/``,
``training.json`` and ``model.keras``; ``tfcnn run`` adds
``metrics.json``, ``export.json`` and a held-out example image.

A run folder belongs to one resolved recipe and one process at a time:

* ``fingerprint.json`` holds the keys that change the trained model (the
  data, augment, model and train sections, less the paths of outputs,
  logging and pure speed options: ``NOT_RESULT_KEYS``) and their SHA-256.
  A recipe that differs from it is refused (``check_recipe``) with one
  line naming each differing key with both values and the two ways on:
  ``--overwrite`` (train again in place) or another ``train.model_dir``.
  A folder written before fingerprints existed is compared through its
  ``recipe.toml``.
* ``lock`` is held while a process trains (an ``fcntl.flock`` on the
  file, which records the holder's PID): a second process is refused at
  once with one line naming that PID. The kernel releases the lock when
  its process dies, so a lock file left by a killed run never blocks.
  Object storage (``gs://``, ...; ``tfcnn.storage``) has no file lock: a
  run folder there is not locked, and two trainers must not be started on
  one URL (a cluster manager's job starts one).

Nothing here imports TensorFlow: the checks run before anything is built.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tomllib

from tfcnn import atomic_files
from tfcnn import storage
from tfcnn.errors import RecipeError

# The sections whose keys shape the trained model.
RESULT_SECTIONS = ("data", "augment", "model", "train")
# Keys of those sections that do not change the trained model: where its
# outputs go, what is logged, how fast it runs, which devices run it, how
# long workers wait, and what evaluation reads.
NOT_RESULT_KEYS = frozenset({
    "data.cache", "data.eval_split", "data.tfds_eval_split",
    "train.model_dir", "train.backup_steps", "train.histogram_freq",
    "train.profile_steps", "train.strategy", "train.devices",
    "train.join_timeout", "train.worker_timeout", "train.cluster",
    "train.cluster_port", "train.jit_compile",
    "train.steps_per_execution",
})


class RunFolder:
    """The files of one run folder.

    Args:
        path: str or Path, ``train.model_dir``.

    Example:

    >>> RunFolder("runs/quickstart").model
    PosixPath('runs/quickstart/model.keras')
    """

    MODEL = "model.keras"
    CLASSES = "classes.json"
    RECIPE = "recipe.toml"
    FINGERPRINT = "fingerprint.json"
    STATE = "training.json"
    CHECKPOINTS = "checkpoints"
    BACKUP = "backup"
    LOGS = "logs"
    METRICS = "metrics.json"
    EXPORT_RECORD = "export.json"
    LOCK = "lock"
    HELD_OUT = "held_out_example"

    def __init__(self, path):
        self.path = storage.path(path)

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    @property
    def model(self):
        return self.path / self.MODEL

    @property
    def classes(self):
        return self.path / self.CLASSES

    @property
    def recipe(self):
        return self.path / self.RECIPE

    @property
    def fingerprint(self):
        return self.path / self.FINGERPRINT

    @property
    def state(self):
        return self.path / self.STATE

    @property
    def checkpoints(self):
        return self.path / self.CHECKPOINTS

    @property
    def backup(self):
        return self.path / self.BACKUP

    @property
    def logs(self):
        return self.path / self.LOGS

    @property
    def metrics(self):
        return self.path / self.METRICS

    @property
    def export_record(self):
        return self.path / self.EXPORT_RECORD

    @property
    def lock_file(self):
        return self.path / self.LOCK

    def held_out(self, suffix):
        """The held-out example image ``tfcnn run`` predicts on."""
        return self.path / f"{self.HELD_OUT}{suffix}"

    # What the folder holds ------------------------------------------------

    def load_recipe(self, overrides=()):
        """The recipe the folder's run was trained with (``recipe.toml``),
        with ``--set`` overrides; ``train.model_dir`` is this folder,
        wherever the run was trained, unless an override sets it.

        Raises:
            RecipeError: the folder holds no ``recipe.toml``.
        """
        from tfcnn import recipe as recipe_lib

        if not self.recipe.is_file():
            raise RecipeError(
                f"{self.path} is a folder without {self.RECIPE}: a recipe "
                "is a TOML file, a packaged recipe's name or a run folder "
                f"(train.model_dir, holding the {self.RECIPE} it was "
                f"trained with). Received: {self.path}")
        recipe = recipe_lib.load_recipe(self.recipe, overrides)
        if any(o.partition("=")[0].strip() == "train.model_dir"
               for o in overrides):
            return recipe
        return recipe.replace(train={"model_dir": str(self.path)})

    def check_is_folder(self):
        """Raises ``RecipeError`` when the path exists but is no folder."""
        if self.path.exists() and not self.path.is_dir():
            raise RecipeError(
                f"train.model_dir must be a folder, and {self.path} is a "
                f"file. Received: train.model_dir={str(self.path)!r}")

    def finished_state(self):
        """``training.json`` of a finished run, else None."""
        if not self.model.is_file():
            return None
        state = _json(self.state)
        return state if state.get("complete") else None

    def stored_keys(self):
        """The result keys of the run the folder holds (dotted key ->
        value), or None when it holds none."""
        stored = _json(self.fingerprint).get("keys")
        if isinstance(stored, dict):
            return stored
        old = _toml(self.recipe)
        return result_keys(old) if old else None

    def has_progress(self):
        """Whether a run has trained here: a model, a backup or a
        checkpoint. A run stopped before its first step (a bad setting)
        leaves only its recipe, which the next run replaces."""
        return (self.model.is_file() or self.backup.is_dir()
                or self.checkpoints.is_dir())

    def differences(self, recipe):
        """``[(key, stored value, recipe's value)]`` of the result keys on
        which ``recipe`` differs from the run in the folder (none when no
        run has trained here: ``has_progress``). Keys one side lacks
        (added to or removed from tfcnn since) are not compared."""
        if not self.has_progress():
            return []
        stored = self.stored_keys()
        if stored is None:
            return []
        new = fingerprint(recipe)["keys"]
        return [(key, stored[key], new[key]) for key in sorted(new)
                if key in stored and stored[key] != new[key]]

    def check_recipe(self, recipe, overwrite_flag=None):
        """Raises ``RecipeError`` when the folder holds another recipe's run.

        Args:
            recipe: ``tfcnn.recipe.Recipe`` about to be trained, evaluated
                or exported.
            overwrite_flag: str, how the caller asks to train again in
                place (``"--overwrite"``); None: the current command's
                (``tfcnn.console.option_text("overwrite")``).
        """
        self.check_is_folder()
        changes = self.differences(recipe)
        if not changes:
            return
        from tfcnn import console

        flag = overwrite_flag or console.option_text("overwrite")
        shown = console.differences_text(changes, "there", "here")
        raise RecipeError(
            f"train.model_dir {self.path} holds a run of another recipe "
            f"({shown}); train it again in place with {flag}, or choose "
            f"another train.model_dir. Received: train.model_dir="
            f"{str(self.path)!r}")

    def check_classes(self, class_names):
        """Raises ``RecipeError`` when the folder's run has other classes
        (names or order) than ``class_names``."""
        old = _json(self.classes).get("class_names")
        if old is None or list(old) == list(class_names):
            return
        from tfcnn import console

        raise RecipeError(
            f"train.model_dir {self.path} holds a run of {len(old)} classes "
            f"({_preview(old)}) and this recipe's data has "
            f"{len(class_names)} ({_preview(class_names)}); train it again "
            f"in place with {console.option_text('overwrite')}, or choose "
            f"a new train.model_dir. Received: train.model_dir="
            f"{str(self.path)!r}")

    # Writing --------------------------------------------------------------

    def write_recipe(self, recipe, class_names):
        """Writes ``classes.json``, ``recipe.toml``, ``fingerprint.json``
        and an unfinished ``training.json``."""
        from tfcnn import recipe as recipe_lib

        self.path.mkdir(parents=True, exist_ok=True)
        atomic_files.write_json_atomic(self.classes,
                                       {"class_names": list(class_names)})
        atomic_files.write_text_atomic(self.recipe,
                                       recipe_lib.dump_toml(recipe))
        atomic_files.write_json_atomic(self.fingerprint, fingerprint(recipe))
        atomic_files.write_json_atomic(self.state, {
            "epochs": recipe.train.epochs, "epochs_completed": 0,
            "complete": False})

    def clear(self):
        """Removes every file of the run (``--overwrite``), the lock
        excepted, so the next run starts from nothing of the old one."""
        for name in (self.LOGS, self.CHECKPOINTS, self.BACKUP):
            storage.rmtree(self.path / name)
        for name in (self.MODEL, self.STATE, self.CLASSES, self.RECIPE,
                     self.FINGERPRINT, self.METRICS, self.EXPORT_RECORD):
            (self.path / name).unlink(missing_ok=True)

    # The lock -------------------------------------------------------------

    def holder(self):
        """The PID (int) of the process training in the folder, or None
        (always None on object storage, which has no lock)."""
        if storage.is_url(self.path):
            return None
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _lock_record(fd).get("pid", "unknown")
        finally:
            os.close(fd)
        return None

    @contextlib.contextmanager
    def lock(self):
        """Holds the folder's lock while the block runs.

        Raises:
            RecipeError: another process holds it (the message names its
                PID).
        """
        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        if storage.is_url(self.path):
            yield self  # no file lock on object storage
            return
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                record = _lock_record(fd)
                os.close(fd)
                raise RecipeError(
                    f"train.model_dir {self.path} is being trained by "
                    f"process {record.get('pid', 'unknown')} on "
                    f"{record.get('host', 'this machine')} (it holds "
                    f"{self.lock_file}); wait for it to finish, stop it, or "
                    f"choose another train.model_dir. Received: "
                    f"train.model_dir={str(self.path)!r}") from None
            # The file may have been removed by its last holder between
            # our open and our lock: then the lock is on a dead inode.
            try:
                same = os.stat(self.lock_file).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(),
                                     "host": socket.gethostname()}).encode())
            yield self
        finally:
            self.lock_file.unlink(missing_ok=True)
            os.close(fd)
            if created and not any(self.path.iterdir()):
                # A run that failed before writing anything leaves nothing.
                self.path.rmdir()


def fingerprint(recipe):
    """The result keys of a recipe and their SHA-256.

    Args:
        recipe: ``tfcnn.recipe.Recipe``.

    Returns:
        dict: ``keys`` (dotted key -> plain value, ``NOT_RESULT_KEYS``
        left out) and ``sha256`` (of their canonical JSON).
    """
    from tfcnn import recipe as recipe_lib

    keys = result_keys(recipe_lib.recipe_to_dict(recipe))
    text = json.dumps(keys, sort_keys=True, separators=(",", ":"))
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(),
            "keys": keys}


def result_keys(sections):
    """Dotted key -> value of the result keys of a recipe's plain dict."""
    return {f"{section}.{key}": value
            for section in RESULT_SECTIONS
            for key, value in sorted(sections.get(section, {}).items())
            if f"{section}.{key}" not in NOT_RESULT_KEYS}


def _lock_record(fd):
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _preview(names, count=3):
    shown = ", ".join(repr(n) for n in list(names)[:count])
    return shown + (", ..." if len(names) > count else "")


def _json(path):
    try:
        data = json.loads(storage.path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _toml(path):
    try:
        return tomllib.loads(storage.path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
