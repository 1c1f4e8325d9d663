"""GPU training speed under the JAX or PyTorch Keras backend, no TensorFlow.

``python benchmarks/gpu.py --backend jax`` (or ``torch``) runs this file.
It needs only Keras, NumPy, the backend and tfcnn's model half
(``tfcnn.layers``, ``tfcnn.blocks``, ``tfcnn.models``, ``tfcnn.augment``):
TensorFlow is blocked (``sys.modules["tensorflow"] = None``), so it runs on
a GPU image that carries JAX or PyTorch but no TensorFlow (see the README,
"GPU benchmark without TensorFlow").

For AlexNet, ResNet-50 with batch norm, ResNet-50 with group norm (Wu & He
2018) and FCN-8s it times training steps on one synthetic batch (the
model alone, as tf_cnn_benchmarks' synthetic figures): uint8 images
through the on-device augmentation (random crop, flip, PCA lighting, mean
subtraction; FCN-8s: lighting and mean) into the network, in float32 and
in mixed precision, and prints images/s. Then two A/B pairs in the same
process: AlexNet with tfcnn's LRN against the textbook LRN (a sum of
shifted squared channels in ``keras.ops``), and ResNet-18 with tfcnn's
group norm against ``keras.layers.GroupNormalization``: the ratios are
the tfcnn step time over the reference's.

Without a GPU it says so on one line and exits with status 2.
``--cpu-smoke`` runs the same code on the CPU with tiny shapes (its speeds
mean nothing beyond the A/B ratios). The last line printed is one JSON
object with every figure.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

BACKENDS = ("jax", "torch")

# name, registered model, options, host size S, crop C, batch.
FULL = {"models": (
    ("alexnet", "alexnet", {}, 256, 224, 256),
    ("resnet50", "resnet50", {}, 256, 224, 128),
    ("resnet50_gn", "resnet50_gn", {}, 256, 224, 64),
    ("fcn8s", "fcn8s", {}, 256, 256, 16)),
    "classes": 1000, "segments": 21, "steps": 30, "warm": 3,
    "mixed": "mixed_float16",
    "ab": {"size": 224, "batch": 64, "width": 1.0}}
# CPUs emulate float16; the smoke run takes bfloat16 through the code.
SMOKE = {"models": (
    ("alexnet", "alexnet", {"width_multiplier": 1 / 16, "fc_units": 32},
     72, 67, 4),
    ("resnet50", "resnet50", {"width_multiplier": 1 / 16}, 40, 32, 4),
    ("resnet50_gn", "resnet50_gn", {"width_multiplier": 1 / 16,
                                    "norm_groups": 2}, 40, 32, 4),
    ("fcn8s", "fcn8s", {"width_multiplier": 1 / 16, "fc_units": 16},
     32, 32, 2)),
    "classes": 10, "segments": 3, "steps": 2, "warm": 1,
    "mixed": "mixed_bfloat16",
    "ab": {"size": 67, "batch": 8, "width": 1 / 4}}


def main(argv=None):
    args = _parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    # The GPU images this targets have no TensorFlow: prove it is not used.
    sys.modules["tensorflow"] = None
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    device = _device(args.backend, args.cpu_smoke)
    if device is None:
        print(f"gpu.py: no GPU visible to {args.backend}; nothing measured. "
              "--cpu-smoke runs the same code on the CPU.", file=sys.stderr)
        return 2
    plan = SMOKE if args.cpu_smoke else FULL
    if args.steps:
        plan = {**plan, "steps": args.steps}
    if args.only:
        plan = {**plan, "models": tuple(
            row for row in plan["models"] if row[0] in args.only)}
    import keras

    started = time.perf_counter()
    rows = []
    for label, name, options, host, crop, batch in plan["models"]:
        for precision in ("float32", plan["mixed"]):
            speed = _train_speed(name, options, host, crop, batch,
                                 precision, plan)
            rows.append({"model": label, "precision": precision,
                         "batch": batch, "images_per_s": round(speed, 1)})
            print(f"{label:12s} {precision:15s} {speed:9.1f} images/s",
                  flush=True)
    ab = _layer_ab(plan, args.only)
    for key, value in ab.items():
        print(f"{key}: {value}", flush=True)
    print(json.dumps({"backend": args.backend, "keras": keras.__version__,
                      "device": device, "cpu_smoke": args.cpu_smoke,
                      "runs": rows, **ab,
                      "seconds": round(time.perf_counter() - started, 1)}))
    return 0


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, required=True)
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="the same code on the CPU, tiny and fast")
    parser.add_argument("--steps", type=int, default=0,
                        help="timed steps per run (default: the plan's)")
    parser.add_argument("--only", action="append", default=[],
                        metavar="MODEL",
                        help="run only this model (repeatable): alexnet, "
                             "resnet50, resnet50_gn, fcn8s; resnet18 for "
                             "its group norm A/B pair")
    return parser.parse_args(argv)


def _device(backend, cpu_smoke):
    """The device's name, or None without a GPU (and no --cpu-smoke)."""
    if backend == "jax":
        if cpu_smoke:
            os.environ["JAX_PLATFORMS"] = "cpu"
        import jax

        devices = jax.devices()
        if not cpu_smoke and devices[0].platform != "gpu":
            return None
        return str(devices[0].device_kind)
    import torch

    if cpu_smoke:
        return "cpu"
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0)


def _train_model(name, options, host, crop, precision, plan):
    """uint8 [S, S, 3] -> on-device augmentation -> the registered net."""
    import keras

    import tfcnn.augment
    import tfcnn.models

    keras.config.set_dtype_policy(precision)
    dense = name.startswith("fcn")
    classes = plan["segments"] if dense else plan["classes"]
    net = tfcnn.models.build(name, input_shape=(crop, crop, 3),
                             num_classes=classes, **options)
    images = keras.Input((host, host, 3), dtype="uint8")
    x = images
    if not dense:
        x = tfcnn.augment.RandomOrCentreCrop(crop, seed=1)(x)
        x = tfcnn.augment.RandomHorizontalFlip(seed=2)(x)
    x = tfcnn.augment.PCALighting(seed=3)(x)
    x = tfcnn.augment.MeanSubtraction(mode="channel")(x)
    model = keras.Model(images, net(x))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=False),
                  jit_compile=True)
    return model, dense, classes


def _train_speed(name, options, host, crop, batch, precision, plan):
    import keras
    import numpy as np

    model, dense, classes = _train_model(name, options, host, crop,
                                         precision, plan)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, host, host, 3)).astype("uint8")
    shape = (batch, crop, crop) if dense else (batch,)
    y = rng.integers(0, classes, shape).astype("int32")
    seconds = _time_steps(lambda: model.train_on_batch(x, y), plan)
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()
    return batch / seconds


def _time_steps(step, plan):
    """Median seconds of one step (each returns a host value: synced)."""
    for _ in range(plan["warm"]):
        step()
    times = []
    for _ in range(plan["steps"]):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _layer_ab(plan, only):
    """Step-time ratios: tfcnn's LRN and group norm over the references."""
    import keras

    import tfcnn.layers
    import tfcnn.models

    size, batch, width = (plan["ab"][k] for k in ("size", "batch", "width"))

    def textbook_lrn(layer):
        return _TextbookLRN(layer.size // 2, layer.bias, layer.alpha,
                            layer.beta, name=layer.name)

    def keras_group_norm(layer):
        return keras.layers.GroupNormalization(
            groups=layer.groups, epsilon=layer.epsilon, name=layer.name)

    pairs = {
        "alexnet_lrn_over_textbook": (
            "alexnet", tfcnn.layers.LocalResponseNormalization,
            textbook_lrn),
        "resnet18_gn_over_keras_gn": (
            "resnet18", tfcnn.layers.GroupNormalization, keras_group_norm),
    }
    if only:
        pairs = {key: pair for key, pair in pairs.items()
                 if pair[0] in only}
    ratios = {}
    for key, (name, swapped, replacement) in pairs.items():
        options = dict(input_shape=(size, size, 3), num_classes=10,
                       width_multiplier=width)
        if name == "resnet18":
            options.update(norm="group", norm_groups=8 if width >= 1 else 4)
        steps = []
        for replace in (False, True):
            model = tfcnn.models.build(name, **options)
            if replace:
                model = keras.models.clone_model(
                    model, clone_function=lambda layer: (
                        replacement(layer) if isinstance(layer, swapped)
                        else layer.__class__.from_config(
                            layer.get_config())))
            steps.append(_model_step(model, size, batch))
        tfcnn_time, reference_time = _time_alternately(
            steps, {**plan, "steps": max(plan["steps"], 5)})
        keras.backend.clear_session()
        ratios[key] = round(tfcnn_time / reference_time, 3)
    return ratios


def _model_step(model, size, batch):
    """One training step of ``model`` on a fixed random batch."""
    import numpy as np

    model.compile(optimizer="sgd", jit_compile=True,
                  loss=keras_loss())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 3)).astype("float32")
    y = rng.integers(0, 10, (batch,)).astype("int32")
    return lambda: model.train_on_batch(x, y)


def _time_alternately(steps, plan):
    """Median seconds of one step of each, their steps taken in turn so
    that a slower or faster spell of the machine falls on both alike."""
    for step in steps:
        for _ in range(plan["warm"]):
            step()
    times = [[] for _ in steps]
    for _ in range(plan["steps"]):
        for step, taken in zip(steps, times):
            start = time.perf_counter()
            step()
            taken.append(time.perf_counter() - start)
    return [sorted(taken)[len(taken) // 2] for taken in times]


def keras_loss():
    import keras

    return keras.losses.SparseCategoricalCrossentropy()


def _textbook_lrn_class():
    import keras
    from keras import ops

    class TextbookLRN(keras.layers.Layer):
        """Inter-channel LRN as the formula reads: 2r + 1 shifted squares
        summed (the reference the A/B pair measures tfcnn's against)."""

        def __init__(self, radius, bias, alpha, beta, **kwargs):
            super().__init__(**kwargs)
            self.radius, self.bias = radius, bias
            self.alpha, self.beta = alpha, beta

        def call(self, x):
            x32 = ops.cast(x, "float32")
            depth = x.shape[-1]
            padded = ops.pad(ops.square(x32), [[0, 0], [0, 0], [0, 0],
                                               [self.radius, self.radius]])
            total = sum(padded[..., i:i + depth]
                        for i in range(2 * self.radius + 1))
            y = x32 * ops.power(self.bias + self.alpha * total, -self.beta)
            return ops.cast(y, self.compute_dtype)

    return TextbookLRN


def _TextbookLRN(*args, **kwargs):  # noqa: N802  (a class, made lazily)
    return _textbook_lrn_class()(*args, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
