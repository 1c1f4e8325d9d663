"""Typed recipes: one TOML file describes a whole experiment.

A recipe has the sections ``data``, ``augment``, ``model``, ``train``,
``evaluate``, ``export`` and ``predict``. Each section is a frozen dataclass
below, and each field's comment is the one place where that key is documented
(``tfcnn keys`` prints them). Unknown keys and values of the wrong
type are rejected with the key's dotted name. ``--set section.key=value``
overrides any key; the value is read as a TOML value, and a bare word is read
as a string.

Recipes hold choices, never derived numbers: steps per epoch, class counts
and schedule boundaries are computed from the dataset's manifest.
"""

import ast
import copy
import dataclasses
import difflib
import enum
import importlib.resources
import inspect
import json
import math
import re
import sys
import tomllib
from pathlib import Path

from tfcnn import storage
from tfcnn.errors import RecipeError
from tfcnn.preprocessing_modes import CropMode
from tfcnn.preprocessing_modes import MeanMode


class Source(enum.Enum):
    """Where the data comes from."""

    DIGITS = "digits"        # scikit-learn's 8x8 digits, written out as PNGs
    # scenes of scikit-learn's digits with per-pixel masks (segmentation)
    DIGIT_SCENES = "digit_scenes"
    FOLDER = "folder"        # class folders of images, ingested to shards
    TFRECORD = "tfrecord"    # existing shards in the ImageNet schema
    TFDS = "tfds"            # a tfds dataset already prepared on disk
    SYNTHETIC = "synthetic"  # random images: measures the model alone


class Strategy(enum.Enum):
    """The tf.distribute strategy that training runs under."""

    AUTO = "auto"                  # mirrored over all GPUs, else one device
    MIRRORED = "mirrored"          # MirroredStrategy over train.devices
    # MultiWorkerMirroredStrategy over the cluster train.cluster names
    MULTI_WORKER = "multi_worker"
    ONE_DEVICE = "one_device"      # OneDeviceStrategy on the first device


class Cluster(enum.Enum):
    """Where a multi-worker run learns its cluster (tfcnn.train.cluster)."""

    AUTO = "auto"              # the first of the three below that is set
    TF_CONFIG = "tf_config"    # the TF_CONFIG environment variable
    SLURM = "slurm"            # the job step srun started
    KUBERNETES = "kubernetes"  # an Indexed Job behind a headless service


class Precision(enum.Enum):
    """Keras dtype policy for training."""

    FLOAT32 = "float32"
    MIXED_FLOAT16 = "mixed_float16"
    MIXED_BFLOAT16 = "mixed_bfloat16"


class Optimizer(enum.Enum):
    SGD = "sgd"      # SGD with train.momentum (Nesterov off), as AlexNet
    ADAM = "adam"
    ADAMW = "adamw"  # decoupled weight decay of train.weight_decay


class Schedule(enum.Enum):
    CONSTANT = "constant"
    STEP = "step"          # divide by 10 at train.step_epochs
    COSINE = "cosine"      # cosine decay to 0 after warm-up
    PLATEAU = "plateau"    # divide by 10 when val accuracy stalls (AlexNet)


class ExportFormat(enum.Enum):
    SAVEDMODEL = "savedmodel"  # TF Serving's layout, verified
    TFLITE = "tflite"          # one .tflite file (tfcnn.export.tflite)


class Quantization(enum.Enum):
    FLOAT32 = "float32"
    DYNAMIC = "dynamic"  # dynamic-range: int8 weights, float activations
    INT8 = "int8"        # full integer, calibrated on training images


class ClassWeighting(enum.Enum):
    NONE = "none"                          # every pixel counts the same
    MEDIAN_FREQUENCY = "median_frequency"  # Eigen & Fergus 2015 balancing


@dataclasses.dataclass(frozen=True)
class DataConfig:
    # where the data comes from: digits | digit_scenes | folder | tfrecord |
    # tfds | synthetic
    source: Source = Source.FOLDER
    # images (digits: where the PNG class folders are written; digit_scenes:
    # where the scenes' images/ and masks/ folders are written; folder: class
    # folders or train/validation/test folders of class folders, or a Pascal
    # VOC or images/masks folder), or the shard folder for source = "tfrecord"
    path: str = ""
    # where ingest writes shards, manifest.json and stats;
    # empty: <path>_tfrecords
    shards: str = ""
    # side of the square crop the network sees (AlexNet: 224)
    crop_size: int = 224
    # host-side size: shorter side resized to this, centre square kept (256)
    resize_size: int = 256
    # fraction of the training images held out for validation (stratified
    # at ingest; for tfds without a validation split, the end of
    # tfds_train_split)
    validation_split: float = 0.1
    # number of shards per split; 0 picks one per ~128 MB
    num_shards: int = 0
    # segmentation sources: store each mask as its height x width bytes of
    # class ids instead of a PNG (Model Garden's schema, which its decoder
    # reads): a copy to read instead of a PNG decode, 188 KB per 500x375
    # mask (`tfcnn ingest --raw-masks`)
    raw_masks: bool = False
    # seed for split and shard assignment, shuffling and augmentation
    seed: int = 0
    # added to stored labels: -1 for shards with 1-based labels
    label_offset: int = 0
    # shards without manifest.json: class names, one per line in label order
    # (e.g. imagenet_lsvrc_2015_synsets.txt); empty: labels.txt beside the
    # shards, else the class count is read off the largest label
    labels_file: str = ""
    # split that `evaluate` reports: "test" when it exists, else "validation"
    eval_split: str = "test"
    # tfds: name of a dataset already prepared on disk (e.g. "mnist")
    tfds_name: str = ""
    # tfds: split to train on
    tfds_train_split: str = "train"
    # tfds: split that `evaluate` reports
    tfds_eval_split: str = "test"
    # tfds: data_dir of the prepared dataset; empty: tfds' default
    tfds_data_dir: str = ""
    # tfds: the one-channel image feature holding segmentation masks (e.g.
    # oxford_iiit_pet's "segmentation_mask"); empty: a classification
    # dataset. Class names from data.labels_file, else the masks' ids
    tfds_mask_key: str = ""
    # synthetic: number of classes
    synthetic_classes: int = 1000
    # synthetic: images per epoch
    synthetic_images: int = 1024
    # digits: the digit classes written (empty: all ten), e.g. [0, 1, 2, 3,
    # 4] to pretrain and [5, 6, 7, 8, 9] to fine-tune on
    digits: tuple = ()
    # digits: at most this many training images per class (0: all; the test
    # split stays whole)
    digits_per_class: int = 0
    # keep decoded, resized uint8 images in memory after the first epoch
    cache: bool = False
    # shuffle buffer in images; 0 picks min(10000, training images)
    shuffle_buffer: int = 0

    def __post_init__(self):
        _coerce(self)
        _positive(self, "crop_size", "resize_size")
        if self.crop_size > self.resize_size:
            raise RecipeError(
                "data.crop_size must be <= data.resize_size. Received: "
                f"crop_size={self.crop_size}, "
                f"resize_size={self.resize_size}")
        if not 0.0 <= self.validation_split < 1.0:
            raise RecipeError(
                "data.validation_split must be in [0, 1). Received: "
                f"{self.validation_split}")
        if self.eval_split not in ("train", "validation", "test"):
            raise RecipeError(
                "data.eval_split must be train, validation or test. "
                f"Received: {self.eval_split!r}")

    @property
    def shard_dir(self):
        """The folder holding shards and manifest.json."""
        if self.source is Source.TFRECORD:
            return storage.path(self.shards or self.path)
        if self.shards:
            return storage.path(self.shards)
        return Path(f"{self.path.rstrip('/')}_tfrecords")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    # training crop to data.crop_size: "random" (a random square, AlexNet),
    # "inception" (random 8-100% of the area, aspect 3/4-4/3, resized; the
    # host decodes only that window; ResNets as in Model Garden and timm)
    # or "none" (the whole image resized); evaluation takes the centre
    # square for random and inception
    crop: CropMode = CropMode.RANDOM
    # random horizontal flip in training (off for digits and text)
    flip: bool = True
    # std of AlexNet's PCA lighting coefficients; 0 turns it off
    pca_lighting: float = 0.1
    # mean subtraction: image | channel | none | imagenet (ImageNet's channel
    # mean and std, and its PCA when the data has no statistics), or
    # keras.applications' caffe | torch | tf; auto: the convention of
    # keras.applications' model with model.weights = "imagenet" (caffe for
    # VGG and ResNet), else image. image and channel need `tfcnn stats`
    mean: MeanMode = MeanMode.AUTO
    # MixUp's alpha (Beta distribution, Zhang et al. 2018); 0 turns it off
    mixup_alpha: float = 0.0
    # CutMix's alpha (Beta distribution, Yun et al. 2019); 0 turns it off
    cutmix_alpha: float = 0.0
    # RandAugment magnitude in [0, 1]; 0 turns it off
    randaugment: float = 0.0
    # segmentation: each training image and its mask are scaled by a factor
    # drawn uniformly from [scale_min, scale_max] before the padded crop
    # (DeepLab: 0.5 to 2.0); 1 and 1 turn scaling off
    scale_min: float = 0.5
    # segmentation: the largest random scale factor (see scale_min)
    scale_max: float = 2.0

    def __post_init__(self):
        # AugmentConfig(mean="channel") and crop="inception" too.
        _coerce(self)
        if not (math.isfinite(self.scale_min) and math.isfinite(
                self.scale_max) and 0.0 < self.scale_min <= self.scale_max):
            raise RecipeError(
                "augment.scale_min and augment.scale_max must satisfy "
                "0 < scale_min <= scale_max. Received: "
                f"scale_min={self.scale_min}, scale_max={self.scale_max}")
        for name in ("pca_lighting", "mixup_alpha", "cutmix_alpha"):
            if not getattr(self, name) >= 0:
                raise RecipeError(
                    f"augment.{name} must be >= 0 (0 turns it off). "
                    f"Received: {getattr(self, name)}")
        if not 0.0 <= self.randaugment <= 1.0:
            raise RecipeError(
                "augment.randaugment must be in [0, 1]. Received: "
                f"{self.randaugment}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    # registered model name: `tfcnn models` lists them
    name: str = "alexnet"
    # extra keyword arguments for the model builder, checked by the builder
    options: dict = dataclasses.field(default_factory=dict)
    # start from trained weights (empty: random initialization): a tfcnn run
    # directory, a .keras, .weights.h5 or keras.applications-style .h5 file,
    # or "imagenet" (keras.applications' file for vgg16, vgg19, resnet50,
    # resnet101, resnet152; fetched by Keras). Matched by layer name and
    # shape; layers that differ (a new classifier) keep their fresh init
    weights: str = ""
    # take model.weights only up to this layer (inclusive); the layers after
    # it keep their fresh initialization and are the head that train.trainable
    # = "head" and train.head_epochs train (Model Garden's
    # init_checkpoint_modules = "backbone"); empty: every layer that matches
    weights_until: str = ""
    # accept model.weights that fill less than half of the network's
    # tensors outside its new head (another architecture's, on purpose);
    # off: such a load is refused, naming the first layers it misses
    weights_partial: bool = False

    def __post_init__(self):
        _coerce(self)
        if self.weights_until and not self.weights:
            raise RecipeError(
                "model.weights_until needs model.weights (the weights to "
                f"take up to that layer). Received: weights_until="
                f"{self.weights_until!r}, weights=''")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    # passes over the training split
    epochs: int = 10
    # global batch size, split evenly over replicas
    batch_size: int = 128
    # learning rate for a global batch of train.lr_batch_size images
    learning_rate: float = 0.01
    # linear scaling rule (Goyal et al. 2017): the rate used is
    # learning_rate * batch_size / lr_batch_size; off: learning_rate as is
    scale_lr: bool = False
    # the global batch that train.learning_rate was tuned for
    lr_batch_size: int = 256
    # sgd | adam | adamw
    optimizer: Optimizer = Optimizer.SGD
    # SGD momentum (AlexNet: 0.9)
    momentum: float = 0.9
    # L2 weight decay (SGD/Adam: added to the loss; AdamW: decoupled)
    weight_decay: float = 0.0
    # learning-rate schedule: constant | step | cosine | plateau
    schedule: Schedule = Schedule.CONSTANT
    # linear warm-up from 0 over this many epochs
    warmup_epochs: float = 0.0
    # epochs at which the step schedule divides the rate by 10
    step_epochs: tuple = ()
    # plateau: epochs without a better val_accuracy before dividing by 10
    plateau_patience: int = 2
    # label smoothing of the cross-entropy, in [0, 1)
    label_smoothing: float = 0.0
    # decay of an exponential moving average of the weights (Keras'
    # optimizer use_ema, e.g. 0.999); the saved, evaluated and exported
    # model carries the averaged weights (the checkpoints and the
    # validation during training the raw ones); 0: off
    ema_decay: float = 0.0
    # stop when the validation metric (val_accuracy, segmentation's
    # val_mean_iou) has not improved for this many epochs and restore the
    # best epoch's weights (checkpoints/best.keras); resumes with the run;
    # 0: off
    early_stopping_patience: int = 0
    # clip the gradients to this global norm (Keras' global_clipnorm;
    # Pascanu et al. 2013); 0: off
    clip_norm: float = 0.0
    # segmentation: none | median_frequency (class weights of the pixel
    # loss from the manifest's pixel counts per class)
    class_weighting: ClassWeighting = ClassWeighting.NONE
    # auto | mirrored | multi_worker | one_device
    strategy: Strategy = Strategy.AUTO
    # devices for strategy = "mirrored", e.g. ["/gpu:0", "/gpu:1"]
    devices: tuple = ()
    # multi_worker: where the cluster comes from: auto | tf_config | slurm |
    # kubernetes (auto: TF_CONFIG, else a Slurm step, else a Kubernetes
    # Indexed Job)
    cluster: Cluster = Cluster.AUTO
    # multi_worker under slurm or kubernetes: the workers' first gRPC port
    # (Slurm: a node's tasks listen on it plus their rank on the node)
    cluster_port: int = 8888
    # multi_worker: seconds every worker waits for all of them to start
    join_timeout: int = 900
    # multi_worker: a worker silent this many seconds (killed, lost) ends
    # the others' training with an error naming it
    worker_timeout: int = 60
    # checkpoints, backups, TensorBoard logs and the trained model go here
    model_dir: str = "runs/model"
    # also back up the training state every N steps within an epoch (a
    # killed run resumes there); 0: at epoch ends only
    backup_steps: int = 1000
    # float32 | mixed_float16 (GPU) | mixed_bfloat16
    precision: Precision = Precision.FLOAT32
    # compile the train step with XLA
    jit_compile: bool = False
    # train steps run per call into the graph (fewer host round trips)
    steps_per_execution: int = 1
    # 0: one pass over the training split per epoch
    steps_per_epoch: int = 0
    # TensorBoard: weight histograms every N epochs; 0 (the default) leaves
    # them out
    histogram_freq: int = 0
    # TensorBoard: profile these steps, "a,b" (e.g. "10,20"); empty: none
    profile_steps: str = ""
    # seed of weight initialization and dropout
    seed: int = 0
    # the layers that train: all | head (the classifier: the network's last
    # layer with weights, or the layers after model.weights_until) |
    # from:<layer name> (that layer and all after it);
    # the others are frozen (a frozen batch norm runs in inference mode)
    trainable: str = "all"
    # fine-tuning in two stages: the first head_epochs of train.epochs train
    # the head alone, the rest train.trainable; 0: one stage
    head_epochs: int = 0
    # second stage of a two-stage run: the learning rate is divided by this
    unfreeze_lr_divisor: float = 10.0

    def __post_init__(self):
        _coerce(self)
        _positive(self, "epochs", "batch_size", "steps_per_execution",
                  "lr_batch_size", "join_timeout", "worker_timeout",
                  "cluster_port", "unfreeze_lr_divisor")
        if self.cluster_port > 65535:
            raise RecipeError(
                "train.cluster_port must be a TCP port, at most 65535. "
                f"Received: {self.cluster_port}")
        if not (self.trainable in ("all", "head") or (
                self.trainable.startswith("from:") and self.trainable[5:])):
            raise RecipeError(
                "train.trainable must be \"all\", \"head\" or "
                f"\"from:<layer name>\". Received: {self.trainable!r}")
        if not 0 <= self.head_epochs < self.epochs:
            raise RecipeError(
                "train.head_epochs must be in [0, train.epochs) (the "
                "stage after it needs an epoch). Received: "
                f"head_epochs={self.head_epochs}, epochs={self.epochs}")
        if not (math.isfinite(self.learning_rate)
                and self.learning_rate > 0):
            raise RecipeError(
                "train.learning_rate must be a finite number > 0. Received: "
                f"{self.learning_rate}")
        if self.epochs > MAX_EPOCHS:
            raise RecipeError(
                f"train.epochs must be at most {MAX_EPOCHS:,} (a typo? "
                "ImageNet recipes run 90-600). Received: "
                f"{self.epochs}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise RecipeError(
                "train.ema_decay must be in [0, 1) (0 turns it off). "
                f"Received: {self.ema_decay}")
        if self.early_stopping_patience < 0 or self.clip_norm < 0:
            raise RecipeError(
                "train.early_stopping_patience and train.clip_norm must be "
                ">= 0 (0 turns them off). Received: early_stopping_patience="
                f"{self.early_stopping_patience}, clip_norm={self.clip_norm}")
        if self.ema_decay and self.early_stopping_patience:
            raise RecipeError(
                "train.ema_decay and train.early_stopping_patience exclude "
                "each other: the best checkpoint that early stopping "
                "restores holds the raw weights, not their average. "
                f"Received: ema_decay={self.ema_decay}, "
                f"early_stopping_patience={self.early_stopping_patience}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise RecipeError(
                "train.label_smoothing must be in [0, 1). Received: "
                f"{self.label_smoothing}")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    # also report the AlexNet paper's 10-crop accuracy
    ten_crop: bool = False

    def __post_init__(self):
        _coerce(self)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    # export root, the folder `tfcnn serve` serves: SavedModels land in
    # <export_dir>/<name>/<version>/ (TF Serving's layout)
    export_dir: str = "saved_models"
    # model name: the <name> folder and the name TF Serving serves it under
    name: str = "model"
    # 0: the next free version
    version: int = 0
    # classes returned per image by the serving signature
    top_k: int = 5
    # what `tfcnn export` writes: savedmodel (TF Serving's layout) | tflite:
    # <export_dir>/<name>.tflite (<name>_<quantization>.tflite when
    # quantized), uint8 image in, probabilities or a segmentation class map
    # out, with <file>.json holding the class names (`tfcnn run` publishes
    # the SavedModel, which its predict stage uses)
    format: ExportFormat = ExportFormat.SAVEDMODEL
    # tflite: float32 | dynamic (int8 weights) | int8 (weights and
    # activations, calibrated on 100 images of the training split)
    quantization: Quantization = Quantization.FLOAT32

    def __post_init__(self):
        _coerce(self)
        _positive(self, "top_k")


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    # images to predict after export; empty: one held-out image
    images: tuple = ()

    def __post_init__(self):
        _coerce(self)


@dataclasses.dataclass(frozen=True)
class Recipe:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = dataclasses.field(
        default_factory=EvaluateConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    predict: PredictConfig = dataclasses.field(default_factory=PredictConfig)

    def replace(self, **sections):
        """Returns a copy with whole sections or section fields replaced.

        ``recipe.replace(train={"epochs": 2})`` changes one key.
        """
        changes = {}
        for section, value in sections.items():
            if isinstance(value, dict):
                value = dataclasses.replace(getattr(self, section), **value)
            changes[section] = value
        return dataclasses.replace(self, **changes)


# More passes than any published recipe needs: a larger count is a typo.
MAX_EPOCHS = 100_000


def _coerce(config):
    """Converts and checks a config's fields as the TOML path does, so
    ``AugmentConfig(mean="channel")`` works and a bad value fails at
    construction naming its key."""
    section = _SECTION_OF[type(config)]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        key = f"{section}.{field.name}"
        converted = _convert(field.type, value, key)
        if isinstance(converted, str) and "\0" in converted:
            # The OS takes no NUL in a path or name: say so here, not in a
            # ValueError traceback from the first open().
            raise RecipeError(
                f"{key} holds a NUL byte (\\u0000), which no path or name "
                f"may hold. Received: {converted!r}")
        if field.name == "seed" and not 0 <= converted < 2**32:
            # The range NumPy's and TensorFlow's global seeds accept.
            raise RecipeError(
                f"{key} must be in [0, 2**32). Received: {converted}")
        if converted is not value:
            object.__setattr__(config, field.name, converted)


def _positive(config, *names):
    section = _SECTION_OF[type(config)]
    for name in names:
        value = getattr(config, name)
        if not value > 0:  # NaN too
            raise RecipeError(
                f"{section}.{name} must be > 0. Received: {value}")


_SECTION_OF = {
    field.type: field.name for field in dataclasses.fields(Recipe)
}

# Recipes shipped with the package; the repository's pipelines/ shows them.
_RECIPES = importlib.resources.files("tfcnn").joinpath("recipes")


def packaged_recipes():
    """Names of the recipes shipped in the package (``tfcnn/recipes/``).

    Returns:
        sorted list of str, e.g. ``["alexnet_imagenet", "quickstart"]``.
    """
    return sorted(path.name[:-len(".toml")]
                  for path in _RECIPES.iterdir()
                  if path.name.endswith(".toml"))


def recipe_text(name):
    """The TOML text of a packaged recipe, comments included.

    Args:
        name: str, one of ``packaged_recipes()``.

    Returns:
        str.

    Raises:
        RecipeError: no packaged recipe has that name.
    """
    if name not in packaged_recipes():
        raise RecipeError(f"no packaged recipe named {name!r}; packaged "
                          f"recipes: {', '.join(packaged_recipes())}")
    return _RECIPES.joinpath(f"{name}.toml").read_text(encoding="utf-8")


def load_recipe(path, overrides=()):
    """Reads a recipe, applies ``--set`` overrides and validates it.

    Args:
        path: str or Path of a TOML file, or the name of a packaged recipe
            (``packaged_recipes()``, e.g. "quickstart") when no such file
            exists.
        overrides: iterable of ``"section.key=value"`` strings.

    Returns:
        a validated ``Recipe``.

    Raises:
        RecipeError: a missing file, bad TOML, or an unknown or ill-typed key.
    """
    path = storage.path(path)
    if not path.is_file():
        if str(path) in packaged_recipes():
            path = _RECIPES.joinpath(f"{path}.toml")
        else:
            raise RecipeError(
                f"recipe file not found: {path} (packaged recipes, run by "
                f"name: {', '.join(packaged_recipes())})")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"{path}: invalid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise RecipeError(
            f"{path}: not UTF-8 text (TOML files are UTF-8): byte "
            f"{error.object[error.start]:#04x} at offset {error.start}"
        ) from None
    return recipe_from_dict(raw, overrides)


def recipe_from_dict(raw, overrides=()):
    """Builds a ``Recipe`` from nested plain values (parsed TOML).

    Args:
        raw: dict of sections, as ``tomllib`` returns them.
        overrides: iterable of ``"section.key=value"`` strings applied first
            (``--set``). Defaults to none.
    """
    raw = copy.deepcopy(raw)
    for override in overrides:
        _apply_override(raw, override)
    return _build(Recipe, raw, "")


def recipe_to_dict(recipe):
    """Returns the recipe as nested plain values (Enums as their strings)."""

    def plain(value):
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {
        section.name: {
            field.name: plain(getattr(getattr(recipe, section.name),
                                      field.name))
            for field in dataclasses.fields(section.type)
        }
        for section in dataclasses.fields(Recipe)
    }


def dump_toml(recipe):
    """Serializes a recipe as TOML (the resolved recipe beside a run)."""
    lines = []
    for section, values in recipe_to_dict(recipe).items():
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
        lines.append("")
        for name, table in tables.items():
            lines.append(f"[{section}.{_toml_key(name)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}"
                      for k, v in table.items()]
            lines.append("")
    return "\n".join(lines)


def key_docs():
    """Returns ``[(dotted key, type or choices, default, doc)]`` for every key.

    A key's doc is the comment block right above its field (a block ending
    in a blank line documents the group of fields below it) or the field's
    inline comment; this keeps tfcnn/recipe.py the one place to document a
    key, and ``tfcnn keys`` prints the table.
    """
    rows = []
    for section in dataclasses.fields(Recipe):
        docs = _FIELD_DOCS[section.type]
        for field in dataclasses.fields(section.type):
            default = getattr(section.type(), field.name)
            if isinstance(default, enum.Enum):
                kind = "|".join(m.value for m in type(default))
                default = default.value
            else:
                kind = _type_name(field.type)
            rows.append((f"{section.name}.{field.name}", kind, default,
                         docs.get(field.name, "")))
    return rows


def _read_field_docs():
    """Maps each section's config class to its field comments.

    Reads and parses this module's source once: ``inspect.getsource(cls)``
    re-parses the whole module on every call, which cost every CLI command
    a parse per section at import.
    """
    lines = inspect.getsource(sys.modules[__name__]).splitlines()
    classes = {cls.__name__: cls for cls in _SECTION_OF}
    return {classes[node.name]:
            _field_comments(lines[node.lineno - 1:node.end_lineno])
            for node in ast.parse("\n".join(lines)).body
            if isinstance(node, ast.ClassDef) and node.name in classes}


def _field_comments(lines):
    docs, block = {}, []
    for line in lines:
        text = line.strip()
        if text.startswith("#"):
            if block and block[-1] is None:
                block = []  # a new comment after fields starts a new block
            block.append(text.lstrip("# "))
            continue
        match = _FIELD_LINE.match(line)
        if match is None:
            block = []  # a blank line, a decorator or a method ends a block
            continue
        inline = match.group(2)
        docs[match.group(1)] = (inline.strip() if inline
                                else " ".join(b for b in block if b))
        if block and block[-1] is not None:
            block.append(None)  # the fields below share this block
    return docs


_FIELD_LINE = re.compile(r"^    (\w+): [^#]*?(?:#\s*(.*))?$")


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(
            f"{_toml_key(k)} = {_toml_value(v)}"
            for k, v in value.items()) + "}"
    return repr(value)


def _toml_string(text):
    # JSON's escapes (\n, \t, \", \\, \uXXXX for other control
    # characters) are all TOML basic-string escapes; TOML also forbids a raw
    # DEL, which JSON leaves as it is.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key):
    key = str(key)
    if key and _BARE_KEY.fullmatch(key):
        return key
    return _toml_string(key)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _type_name(tp):
    if tp is tuple:
        return "list"
    return getattr(tp, "__name__", str(tp))


def _apply_override(raw, override):
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(
            f"--set takes section.key=value. Received: {override!r}")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # a bare word is a string
    *parents, leaf = key.split(".")
    node = raw
    for i, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(
                f"--set {key}: {'.'.join(parents[:i + 1])} is not a table")
    node[leaf] = value


def _build(cls, raw, prefix):
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{prefix.rstrip('.') or 'recipe'} must be a table. "
            f"Received: {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        close = difflib.get_close_matches(unknown[0], fields, n=1)
        hint = f"; did you mean {prefix}{close[0]}?" if close else ""
        raise RecipeError(
            f"unknown recipe key {prefix}{unknown[0]}{hint} "
            f"(known in {prefix.rstrip('.') or 'recipe'}: "
            f"{', '.join(fields)})")
    values = {}
    for name, value in raw.items():
        values[name] = _convert(fields[name].type, value, prefix + name)
    try:
        return cls(**values)
    except TypeError as error:
        raise RecipeError(f"{prefix.rstrip('.')}: {error}") from None


def _convert(tp, value, key):
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return _build(tp, value, key + ".")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            choices = ", ".join(str(m.value) for m in tp)
            raise RecipeError(
                f"{key} must be one of {choices}. Received: {value!r}"
            ) from None
    if tp is bool:
        if not isinstance(value, bool):
            raise RecipeError(
                f"{key} must be a boolean (true or false). "
                f"Received: {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(
                f"{key} must be an integer. Received: {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{key} must be a number. Received: {value!r}")
        if not math.isfinite(value):
            raise RecipeError(
                f"{key} must be a finite number. Received: {value!r}")
        return value if type(value) is float else float(value)
    if tp is str:
        if not isinstance(value, str):
            raise RecipeError(f"{key} must be a string. Received: {value!r}")
        return value
    if tp is tuple:
        if isinstance(value, tuple):
            return value
        if not isinstance(value, list):
            raise RecipeError(f"{key} must be a list. Received: {value!r}")
        return tuple(value)
    if tp is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{key} must be a table. Received: {value!r}")
        return dict(value)
    raise TypeError(f"unsupported recipe field type {tp!r} for {key}")


def _document_fields():
    """Lists each section's keys in its class docstring, from the comments
    above the fields, so ``help(AugmentConfig)`` shows what ``tfcnn keys``
    does."""
    for cls, section in _SECTION_OF.items():
        defaults = cls()
        lines = [f"The ``[{section}]`` section of a recipe.", "",
                 "Attributes:"]
        for name, doc in _FIELD_DOCS[cls].items():
            default = getattr(defaults, name)
            if isinstance(default, enum.Enum):
                default = default.value
            lines.append(f"    {name}: {doc.rstrip('.')}. Defaults to "
                         f"{default!r}.")
        cls.__doc__ = "\n".join(lines)


_FIELD_DOCS = _read_field_docs()
_document_fields()
