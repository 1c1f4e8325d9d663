"""One-command GPU check: training speed, precision, replicas, input wait.

On a GPU machine, for AlexNet and ResNet-50 (the project's training model:
uint8 256x256 input, on-device crop, flip, PCA lighting and mean
subtraction, then the network, 224 crops), prints images/s of

- synthetic input (one batch repeated: the model alone) and real input
  (``tfcnn.data.classification_pipeline.make_dataset`` on JPEG shards of
  ~500x375 photos, written once under ``--data``);
- float32, and mixed_float16 with XLA (``train.precision``,
  ``train.jit_compile``);
- one GPU, and every GPU under ``MirroredStrategy`` (NCCL all-reduce);

with the fraction of step time spent waiting for the next batch, measured
where the step waits (``tfcnn.summaries.StepMonitor``). Before that,
two SGD steps of LeNet-5 on one device and on all of them, from the same
weights on the same global batch, must give the same weights (the 1-vs-N
equivalence check: gradients aggregated once, not lost or doubled).

``--backend jax`` (or ``torch``) runs ``benchmarks/gpu_keras.py`` instead:
the same kind of figures from Keras, NumPy and tfcnn's model half alone,
for GPU machines without TensorFlow.

Run: ``python benchmarks/gpu.py`` (sized for a few minutes on one GPU: 40
timed steps per run, 1,024 real images).
Without a GPU it says so on one line and exits with status 2 at once.
``--cpu-smoke`` runs the same code on the CPU with tiny images, batches and
step counts and two logical CPU devices as the "GPUs", to prove the script
end to end where there is no GPU; its speeds mean nothing. The last line
printed is one JSON object with every figure.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _keras_backend(argv):
    """``--backend`` from the command line, read before TensorFlow loads."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--backend", default="tensorflow")
    return parser.parse_known_args(argv)[0].backend


if __name__ == "__main__" and _keras_backend(sys.argv[1:]) != "tensorflow":
    # JAX or PyTorch: benchmarks/gpu_keras.py, which needs no TensorFlow.
    sys.path.insert(0, str(Path(__file__).parent))
    import gpu_keras

    sys.exit(gpu_keras.main(sys.argv[1:]))

try:
    import tensorflow as tf  # noqa: E402
except ImportError as error:
    # A GPU image without TensorFlow (e.g. a PyTorch/JAX one): say so at
    # once instead of a traceback.
    print(f"gpu.py: TensorFlow is not importable here ({error}); install "
          "tfcnn with `pip install -e .[gpu]` first. Nothing measured.",
          file=sys.stderr)
    sys.exit(2)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfcnn import recipe as recipe_lib  # noqa: E402
from tfcnn import summaries  # noqa: E402
from tfcnn.data import classification_pipeline  # noqa: E402
from tfcnn.data import pipeline  # noqa: E402
from tfcnn.train import fit  # noqa: E402
from tfcnn.train.strategy import mirrored  # noqa: E402

# models: (name, host size S, crop C, images per replica); then timed and
# warm-up steps per run, real images, classes, the fast mixed precision.
FULL = {"models": (("alexnet", 256, 224, 256), ("resnet50", 256, 224, 128)),
        "steps": 40, "warm": 5, "images": 1024, "classes": 1000,
        "mixed": "mixed_float16"}
# CPUs emulate float16 (minutes a step for ResNet-50 even at 32x32); the
# smoke run takes the CPU's own 16-bit type through the same code.
SMOKE = {"models": (("alexnet", 72, 67, 4), ("resnet50", 40, 32, 4)),
         "steps": 2, "warm": 1, "images": 32, "classes": 10,
         "mixed": "mixed_bfloat16"}


def main():
    args = _parse_args()
    if args.cpu_smoke:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        devices, plan = ["/cpu:0", "/cpu:1"], SMOKE
    else:
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            print("gpu.py: no GPU visible to TensorFlow "
                  "(tf.config.list_physical_devices('GPU') is empty); "
                  "nothing measured. --cpu-smoke runs the same code on the "
                  "CPU.", file=sys.stderr)
            return 2
        os.environ.setdefault("TF_GPU_THREAD_MODE", "gpu_private")
        devices, plan = [f"/gpu:{i}" for i in range(len(gpus))], FULL
    started = time.perf_counter()
    files = _real_shards(Path(args.data), plan["images"])
    check = _equivalence(devices, resize_size=36)
    print(f"1 vs {len(devices)} replicas, 2 SGD steps of LeNet-5: max "
          f"|difference| {check['max_abs_difference']:.2e} "
          f"({'same' if check['equivalent'] else 'DIFFERENT'} weights)")
    rows = []
    models = [m for m in plan["models"] if not args.only or m[0] in args.only]
    for name, resize_size, crop, per_replica in models:
        for replicas, precision, xla in _configurations(
                len(devices), plan["mixed"], args.cpu_smoke):
            for source in ("synthetic", "real"):
                speed, wait = _measure(
                    name, resize_size, crop, per_replica, devices[:replicas],
                    precision, xla, files if source == "real" else None,
                    plan)
                rows.append({"model": name, "replicas": replicas,
                             "precision": precision, "xla": xla,
                             "input": source, "images_per_s": round(speed, 1),
                             "input_wait_fraction": round(wait, 3)})
                print(f"{name:9s} {replicas} x {devices[0][1:4]}  "
                      f"{precision:13s} xla={str(xla):5s} {source:9s} "
                      f"{speed:9.1f} images/s  waiting for input "
                      f"{100 * wait:5.1f}%", flush=True)
    figures = {"devices": devices, "cpu_smoke": args.cpu_smoke,
               "equivalence": check, "runs": rows,
               "seconds": round(time.perf_counter() - started, 1)}
    figures.update(_ratios(rows, len(devices), plan["mixed"]))
    print(json.dumps(figures))
    return 0 if check["equivalent"] else 1


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="the same code on the CPU, tiny and fast, with "
                             "two logical CPU devices as the replicas")
    parser.add_argument("--backend", default="tensorflow",
                        choices=("tensorflow", "jax", "torch"),
                        help="jax or torch: benchmarks/gpu_keras.py")
    parser.add_argument("--only", action="append", default=[],
                        choices=[m[0] for m in FULL["models"]],
                        help="measure only this model (repeatable); "
                             "default: all")
    parser.add_argument("--data", default="/tmp/tfcnn_bench_gpu",
                        help="where the real-input shards go (reused)")
    return parser.parse_args()


def _configurations(num_devices, mixed, cpu_smoke):
    """(replicas, precision, xla): both precisions on one device, the
    fast one on all of them. XLA's CPU compiler cannot reach variables on
    a second logical CPU device, so the smoke run's replicas go without."""
    configurations = [(1, "float32", False), (1, mixed, True)]
    if num_devices > 1:
        configurations.append((num_devices, mixed, not cpu_smoke))
    return configurations


def _real_shards(data, count):
    """JPEG shards of ``count`` photos, written once (benchmarks/pipeline)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import pipeline as pipeline_benchmark

    pipeline_benchmark._make_data(data, count)
    return pipeline.list_shards(data / "shards", "train")


def _recipe(name, resize_size, crop, batch, precision, xla, classes):
    return recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic", "crop_size": crop,
                 "resize_size": resize_size, "synthetic_classes": classes},
        "model": {"name": name},
        "train": {"batch_size": batch, "precision": precision,
                  "jit_compile": xla, "learning_rate": 0.01},
    })


def _strategy(devices):
    if len(devices) == 1:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return mirrored(devices)


def _measure(name, resize_size, crop, per_replica, devices, precision, xla,
             files, plan):
    """images/s and input-wait fraction of ``plan['steps']`` fit steps."""
    batch = per_replica * len(devices)
    recipe = _recipe(name, resize_size, crop, batch, precision, xla,
                     plan["classes"])
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        with _strategy(devices).scope():
            model = fit.build_training_model(recipe, plan["classes"])
            fit.compile_model(model, recipe, steps_per_epoch=plan["steps"])
        if files is None:
            rng = np.random.default_rng(0)
            dataset = tf.data.Dataset.from_tensors((
                rng.integers(0, 256, (batch, resize_size, resize_size, 3),
                             np.uint8),
                rng.integers(0, 8, batch).astype(np.int32))).repeat()
        else:
            dataset = classification_pipeline.make_dataset(
                files, resize_size=resize_size, batch_size=batch, training=True,
                repeat=True, deterministic=False)
        # The callback times each batch's arrival through the train
        # function; the warm-up goes through it too, so that the timed
        # steps run the function already traced and compiled.
        speed = _Speed(batch)
        for steps in (plan["warm"], plan["steps"]):
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0,
                      callbacks=[speed])
    finally:
        keras.config.set_dtype_policy(policy)
        keras.backend.clear_session()
    return speed.images_per_s, speed.wait_fraction


class _Speed(summaries.StepMonitor):
    """StepMonitor's timing of one fit (images/s, the share of step time
    spent waiting for the next batch), kept instead of written."""

    def __init__(self, batch_size):
        super().__init__(tempfile.mkdtemp(prefix="tfcnn_gpu_"), batch_size,
                         every_steps=2**31)
        self.images_per_s = self.wait_fraction = 0.0

    def on_epoch_end(self, epoch, logs=None):
        # Before StepMonitor writes and resets its counts.
        elapsed = time.perf_counter() - self._start
        self.images_per_s = self._steps * self.batch_size / elapsed
        self.wait_fraction = min(1.0, self._wait / elapsed)
        super().on_epoch_end(epoch, logs)


def _equivalence(devices, resize_size):
    """Weights after 2 SGD steps on one device and on all ``devices``."""
    recipe = recipe_lib.recipe_from_dict({
        "data": {"source": "synthetic", "crop_size": resize_size - 4,
                 "resize_size": resize_size},
        "augment": {"crop": "none", "flip": False, "pca_lighting": 0.0,
                    "mean": "none"},
        "model": {"name": "lenet5", "options": {"activation": "relu"}},
        "train": {"batch_size": 8 * len(devices), "learning_rate": 0.1,
                  "momentum": 0.9, "weight_decay": 5e-4},
    })
    keras.utils.set_random_seed(1)
    initial = fit.build_training_model(recipe, 10).get_weights()
    rng = np.random.default_rng(0)
    shape = (8 * len(devices), resize_size, resize_size, 3)
    batch = (rng.integers(0, 256, shape, np.uint8),
             rng.integers(0, 10, 8 * len(devices)).astype(np.int32))
    results = []
    for strategy_devices in (devices[:1], devices):
        with _strategy(strategy_devices).scope():
            model = fit.build_training_model(recipe, 10)
            fit.compile_model(model, recipe, steps_per_epoch=2)
        model.set_weights(initial)
        model.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=1,
                  steps_per_epoch=2, verbose=0, shuffle=False)
        results.append(model.get_weights())
        keras.backend.clear_session()
    difference = max(float(np.max(np.abs(a - b)))
                     for a, b in zip(*results))
    scale = max(float(np.max(np.abs(w))) for w in results[0])
    moved = max(float(np.max(np.abs(a - b)))
                for a, b in zip(initial, results[0]))
    return {"replicas": len(devices), "max_abs_difference": difference,
            "max_abs_update": moved,
            "equivalent": bool(difference <= 1e-4 * scale + 1e-6
                               and moved > 100 * difference)}


def _ratios(rows, num_devices, mixed):
    """Speed-ups under names: mixed+XLA over float32, real over synthetic
    input, all devices over one."""
    def speed(model, replicas, precision, source):
        for row in rows:
            if (row["model"], row["replicas"], row["precision"],
                    row["input"]) == (model, replicas, precision, source):
                return row["images_per_s"]
        return None

    ratios = {}
    for model in sorted({row["model"] for row in rows}):
        fast = speed(model, 1, mixed, "synthetic")
        ratios[f"{model}_mixed_xla_over_float32"] = round(
            fast / speed(model, 1, "float32", "synthetic"), 3)
        ratios[f"{model}_real_over_synthetic"] = round(
            speed(model, 1, mixed, "real") / fast, 3)
        if num_devices > 1:
            ratios[f"{model}_{num_devices}_over_1_replicas"] = round(
                speed(model, num_devices, mixed, "synthetic")
                / fast, 3)
    return ratios


if __name__ == "__main__":
    sys.exit(main())
